/*
 * chat.js - the web chat (docs/web.md).
 *
 * Sends each message to POST /v1/conversations/{id}/messages with
 * "Accept: text/event-stream" and renders the answer as it streams
 * (delta events), the tools the worker uses (tool events), and a handoff.
 * A person's replies arrive through GET /v1/conversations/{id}/events
 * (re-opened when it ends, resuming after the last seq seen).
 */
"use strict";

(function () {
  const $ = function (id) { return document.getElementById(id); };
  const list = $("messages");
  const banner = $("handoff-banner");
  const form = $("composer");
  const input = $("text");
  const sendBtn = $("send");
  const worker = $("worker");
  let conv = sessionStorage.getItem("mesh.conv");
  let lastSeq = 0;
  let eventsAbort = null;
  let handoff = "bot";

  function newConv() {
    conv = MeshSSE.randomId("web-");
    sessionStorage.setItem("mesh.conv", conv);
    lastSeq = 0;
    $("conv-id").textContent = conv;
  }

  function addMessage(kind, text, label) {
    const li = document.createElement("li");
    li.className = "msg " + kind;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = label;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    li.appendChild(who);
    li.appendChild(body);
    list.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  function addTool(li, tool) {
    let tools = li.querySelector(".tools");
    if (!tools) {
      tools = document.createElement("ul");
      tools.className = "tools";
      tools.setAttribute("aria-label", "Tools used");
      li.insertBefore(tools, li.querySelector(".text"));
    }
    let item = tools.querySelector('[data-call="' + CSS.escape(tool.call_id || tool.name) + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.call = tool.call_id || tool.name;
      tools.appendChild(item);
    }
    const done = tool.phase === "end";
    item.className = "tool " + (done ? (tool.ok === false ? "failed" : "done") : "running");
    item.textContent = (done ? (tool.ok === false ? "✗ " : "✓ ") : "… ") + tool.name;
  }

  function setHandoff(state, info) {
    handoff = state;
    if (state === "pending") {
      banner.textContent = "Passing you to a colleague" + (info && info.reason ? " (" + info.reason + ")" : "") +
        ". Please wait: a person will answer here.";
      banner.className = "banner pending";
      banner.hidden = false;
    } else if (state === "human") {
      banner.textContent = "A colleague has taken over" + (info && info.person ? " (" + info.person + ")" : "") +
        ". Your messages go to them.";
      banner.className = "banner human";
      banner.hidden = false;
    } else {
      if (!banner.hidden && banner.classList.contains("human")) {
        banner.textContent = "The assistant is back. Ask anything.";
        banner.className = "banner bot";
      } else {
        banner.hidden = true;
      }
    }
  }

  async function loadWorkers() {
    try {
      const r = await fetch("/v1/models");
      if (!r.ok) return;
      const body = await r.json();
      (body.data || []).forEach(function (m) {
        const o = document.createElement("option");
        o.value = m.id;
        o.textContent = m.id + (m.description ? " — " + m.description.slice(0, 60) : "");
        worker.appendChild(o);
      });
      const saved = sessionStorage.getItem("mesh.worker");
      if (saved) worker.value = saved;
    } catch (e) { /* offline: triage chooses */ }
  }

  async function follow() {
    const mine = new AbortController();
    eventsAbort = mine;
    while (!mine.signal.aborted) {
      try {
        const r = await fetch("/v1/conversations/" + encodeURIComponent(conv) + "/events?after=" + lastSeq,
          { headers: { Accept: "text/event-stream" }, signal: mine.signal });
        if (r.ok) {
          await MeshSSE.read(r, function (name, data) {
            const ev = MeshSSE.parse(data);
            if (!ev) return;
            if (name === "message") {
              if (ev.seq > lastSeq) lastSeq = ev.seq;
              if (ev.name === "human") addMessage("human", ev.text || "", "Colleague" + (ev.person ? " " + ev.person : ""));
            } else if (name === "handoff") {
              setHandoff(ev.state, ev);
            } else if (name === "gap") {
              lastSeq = Math.max(lastSeq, ev.from - 1);
            }
          });
        }
      } catch (e) {
        if (mine.signal.aborted) return;
      }
      await new Promise(function (res) { setTimeout(res, 1000); });
    }
  }

  function restartFollow() {
    if (eventsAbort) eventsAbort.abort();
    follow();
  }

  async function send(text) {
    addMessage("user", text, "You");
    const li = addMessage("bot streaming", "", "Assistant");
    const body = li.querySelector(".text");
    sendBtn.disabled = true;
    const payload = { text: text, message_id: MeshSSE.randomId("m-") };
    if (worker.value) payload.agent = worker.value;
    try {
      const r = await fetch("/v1/conversations/" + encodeURIComponent(conv) + "/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(payload)
      });
      if (!r.ok) {
        const e = await r.json().catch(function () { return {}; });
        throw new Error((e.error && e.error.message) || ("HTTP " + r.status));
      }
      let final = null;
      await MeshSSE.read(r, function (name, data) {
        const ev = MeshSSE.parse(data);
        if (!ev) return;
        if (name === "delta") {
          body.textContent += ev.text || "";
          li.dataset.deltas = String(Number(li.dataset.deltas || 0) + 1);
        }
        else if (name === "tool") addTool(li, ev);
        else if (name === "handoff") setHandoff(ev.state, ev);
        else if (name === "final") final = ev;
        else if (name === "error") throw new Error((ev.error && ev.error.message) || "error");
      });
      li.classList.remove("streaming");
      if (final) {
        if (final.reply) body.textContent = final.reply;
        if (final.handoff) setHandoff(final.handoff, final.state || {});
        else if (handoff !== "bot") setHandoff("bot");
        if (!final.reply) {
          li.classList.add("quiet");
          body.textContent = final.handoff === "human" ? "(sent to your colleague)" : "(a colleague will answer here)";
        }
      }
    } catch (e) {
      li.classList.remove("streaming");
      li.classList.add("error");
      body.textContent = "Sorry, the message could not be answered: " + e.message;
    } finally {
      sendBtn.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  worker.addEventListener("change", function () { sessionStorage.setItem("mesh.worker", worker.value); });
  $("new-conv").addEventListener("click", function () {
    newConv();
    list.textContent = "";
    setHandoff("bot");
    banner.hidden = true;
    restartFollow();
  });

  if (!conv) newConv();
  $("conv-id").textContent = conv;
  loadWorkers();
  follow();
})();
