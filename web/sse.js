/*
 * sse.js - Server-Sent Events over fetch() (shared by the web chat and the
 * console). EventSource cannot POST or send an Authorization header, so
 * both pages read event streams with fetch and this small parser.
 *
 * MeshSSE.read(response, onEvent) -> Promise that resolves when the stream
 * ends; onEvent(name, data) is called for every event ("message" when the
 * event has no name). Lines starting with ':' (heartbeats) are ignored.
 */
"use strict";

window.MeshSSE = (function () {
  async function read(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buf = "";
    let name = "";
    let data = [];
    function line(l) {
      if (l === "") {
        if (data.length > 0) onEvent(name || "message", data.join("\n"));
        name = "";
        data = [];
        return;
      }
      if (l.charAt(0) === ":") return;
      const i = l.indexOf(":");
      const field = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? "" : l.slice(i + 1);
      if (value.charAt(0) === " ") value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      let at;
      while ((at = buf.search(/\r\n|\r|\n/)) >= 0) {
        const nl = buf.charAt(at) === "\r" && buf.charAt(at + 1) === "\n" ? 2 : 1;
        line(buf.slice(0, at));
        buf = buf.slice(at + nl);
      }
    }
    if (buf.length > 0) line(buf);
    line("");
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (e) {
      return null;
    }
  }

  function randomId(prefix) {
    const a = new Uint8Array(8);
    window.crypto.getRandomValues(a);
    return prefix + Array.from(a, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  return { read: read, parse: parse, randomId: randomId };
})();
