/*
 * console.js - the people console (docs/web.md).
 *
 * Asks for a people API key (kept in sessionStorage only), follows the
 * queue live through GET /v1/handoff/events (re-opened when it ends),
 * shows a conversation's transcript and collected facts (GET
 * /v1/handoff/{id}, refreshed every REFRESH_MS while open) and claims,
 * replies, notes and releases through the people API.
 */
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const $ = function (id) { return document.getElementById(id); };
  let key = sessionStorage.getItem("mesh.peopleKey") || "";
  let current = null;
  let detail = null;
  let queueAbort = null;
  let refreshTimer = null;

  function headers(json) {
    const h = { Authorization: "Bearer " + key };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  function showLogin(message) {
    key = "";
    sessionStorage.removeItem("mesh.peopleKey");
    if (queueAbort) queueAbort.abort();
    $("workspace").hidden = true;
    $("login").hidden = false;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("login-error").textContent = message || "";
    $("api-key").focus();
  }

  async function api(method, path, body) {
    const r = await fetch(path, {
      method: method,
      headers: headers(body !== undefined),
      body: body !== undefined ? JSON.stringify(body) : undefined
    });
    const data = await r.json().catch(function () { return {}; });
    if (r.status === 401) {
      showLogin("The key was refused.");
      throw new Error("unauthorized");
    }
    if (!r.ok) throw new Error((data.error && data.error.message) || ("HTTP " + r.status));
    return data;
  }

  function since(ms) {
    if (!ms) return "";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min";
  }

  let lastQueue = null;
  /* Waiting times move on even when the queue does not change. */
  setInterval(function () { if (lastQueue && key) renderQueue(lastQueue); }, 10000);

  function renderQueue(q) {
    lastQueue = q;
    const ul = $("queue");
    ul.textContent = "";
    $("queue-count").textContent = "(" + (q.total || 0) + ")";
    (q.items || []).forEach(function (it) {
      const li = document.createElement("li");
      li.className = "queue-item " + it.state;
      li.dataset.conv = it.conversation_id;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = it.conversation_id;
      b.addEventListener("click", function () { open(it.conversation_id); });
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = " " + it.state + (it.person ? " · " + it.person : "") + " · " + (it.agent || "") +
        " · waiting " + since(it.since) + (it.reason ? " · " + it.reason : "");
      li.appendChild(b);
      li.appendChild(meta);
      ul.appendChild(li);
    });
  }

  async function followQueue() {
    const mine = new AbortController();
    queueAbort = mine;
    while (!mine.signal.aborted && key) {
      try {
        const r = await fetch("/v1/handoff/events", { headers: headers(false), signal: mine.signal });
        if (r.status === 401) { showLogin("The key was refused."); return; }
        if (r.ok) {
          $("queue-live").textContent = "live";
          await MeshSSE.read(r, function (name, data) {
            if (name !== "queue") return;
            const q = MeshSSE.parse(data);
            if (q) renderQueue(q);
          });
        }
      } catch (e) {
        if (mine.signal.aborted) return;
      }
      $("queue-live").textContent = "reconnecting…";
      await new Promise(function (res) { setTimeout(res, 1000); });
    }
  }

  function renderDetail(d) {
    detail = d;
    $("detail").hidden = false;
    $("detail-conv").textContent = d.conversation_id;
    const ho = d.handoff || {};
    $("detail-state").textContent = "State: " + ho.state + (ho.person ? " (held by " + ho.person + ")" : "") +
      (ho.reason ? " · reason: " + ho.reason : "") + (d.agent ? " · worker: " + d.agent : "") +
      (d.channel ? " · channel: " + d.channel : "");
    $("detail-state").dataset.state = ho.state;
    $("claim").disabled = ho.state !== "pending";
    const ol = $("transcript");
    ol.textContent = "";
    (d.messages || []).forEach(function (m) {
      if (m.role === "tool") return;
      const li = document.createElement("li");
      const kind = m.role === "note" ? "note" : m.role === "user" ? "user" : m.name === "human" ? "human" : "bot";
      li.className = "msg " + kind;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = kind === "note" ? "Note" + (m.person ? " · " + m.person : "") :
        kind === "user" ? "Customer" : kind === "human" ? "Colleague · " + (m.person || "") : "Assistant";
      const body = document.createElement("div");
      body.className = "text";
      body.textContent = m.text || (m.tool_calls ? "(calls " + m.tool_calls.map(function (c) { return c.name; }).join(", ") + ")" : "");
      li.appendChild(who);
      li.appendChild(body);
      ol.appendChild(li);
    });
    const dl = $("slots");
    dl.textContent = "";
    Object.keys(d.slots || {}).forEach(function (k) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(d.slots[k]);
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    $("records").textContent = JSON.stringify(d.records || {}, null, 2);
  }

  async function refresh() {
    if (!current) return;
    try {
      renderDetail(await api("GET", "/v1/handoff/" + encodeURIComponent(current)));
    } catch (e) {
      $("action-error").textContent = e.message;
    }
  }

  function open(conv) {
    current = conv;
    $("action-error").textContent = "";
    refresh();
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = setInterval(refresh, REFRESH_MS);
  }

  async function act(path, body, after) {
    $("action-error").textContent = "";
    try {
      await api("POST", "/v1/handoff/" + encodeURIComponent(current) + "/" + path, body);
      if (after) after();
      await refresh();
    } catch (e) {
      $("action-error").textContent = e.message;
    }
  }

  $("claim").addEventListener("click", function () { act("claim", {}); });
  $("reply-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const t = $("reply-text").value.trim();
    if (t) act("reply", { text: t, message_id: MeshSSE.randomId("h-") }, function () { $("reply-text").value = ""; });
  });
  $("note-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const t = $("note-text").value.trim();
    if (t) act("note", { text: t }, function () { $("note-text").value = ""; });
  });
  $("release-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const t = $("release-summary").value.trim();
    if (t) act("release", { summary: t }, function () { $("release-summary").value = ""; });
  });

  async function signIn() {
    try {
      await api("GET", "/v1/handoff/queue?limit=1");
    } catch (e) {
      if (e.message !== "unauthorized") $("login-error").textContent = e.message;
      return;
    }
    sessionStorage.setItem("mesh.peopleKey", key);
    $("login").hidden = true;
    $("workspace").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = "signed in";
    followQueue();
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    key = $("api-key").value.trim();
    $("api-key").value = "";
    signIn();
  });
  $("sign-out").addEventListener("click", function () { showLogin(""); });

  if (key) signIn();
  else showLogin("");
})();
