// gflow dashboard: live updates from the daemon's event stream, confirmations, log follow.
// No library and no polling: the page changes when the daemon says something changed.
"use strict";

(() => {
  const body = document.body;
  const page = body.dataset.page;
  const conn = document.getElementById("conn");
  const live = document.getElementById("live");
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const uid = meta("gflow-uid");
  const key = meta("gflow-key");
  const jobId = body.dataset.job;

  function say(text, kind) {
    if (!conn) return;
    conn.textContent = text;
    conn.dataset.kind = kind || "";
  }

  // ------------------------------------------------------------ the live part of the page

  const GAP = { queue: 250, job: 150, graph: 400, gpus: 400, stats: 5000 }[page] || 400;
  let busy = false;
  let pending = false;
  let last = 0;
  let timer = null;

  function refresh() {
    pending = true;
    if (!live || busy || timer) return;
    timer = setTimeout(load, Math.max(0, last + GAP - Date.now()));
  }

  async function load() {
    timer = null;
    if (!pending) return;
    pending = false;
    busy = true;
    last = Date.now();
    try {
      const url = new URL(location.href);
      url.searchParams.set("partial", "1");
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) {
        say("your token is no longer valid: run gflow web for a new address", "bad");
      } else if (r.ok || r.status === 400) {
        swap(await r.text());
      }
    } catch (e) {
      // the event stream reports a lost connection
    } finally {
      busy = false;
      if (pending) refresh();
    }
  }

  function swap(html) {
    const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : "";
    const box = live.querySelector(".scroll");
    const scroll = box ? [box.scrollLeft, box.scrollTop] : null;
    live.innerHTML = html;
    const again = live.querySelector(".scroll");
    if (again && scroll) [again.scrollLeft, again.scrollTop] = scroll;
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    fit();
  }

  function flash(el) {
    if (!el) return;
    el.classList.add("changed");
    setTimeout(() => el.classList.remove("changed"), 1200);
  }

  const handlers = {
    queue(items) {
      const states = (live.dataset.states || "").split(",").filter(Boolean);
      for (const it of items) {
        const row = document.getElementById("job-" + it.id);
        if (row) {
          row.outerHTML = it.row;
          flash(document.getElementById("job-" + it.id));
        }
        if (!row || (states.length && !states.includes(it.state))) refresh();
      }
    },
    job(items) {
      const related = (body.dataset.related || "").split(",");
      if (items.some((it) => String(it.id) === jobId || related.includes(String(it.id)) || it.parents.map(String).includes(jobId))) refresh();
    },
    graph(items) {
      for (const it of items) {
        const node = document.getElementById("n-" + it.id);
        if (node) {
          node.setAttribute("class", "node st-" + it.st);
        } else if (!body.dataset.root || it.parents.some((p) => document.getElementById("n-" + p))) {
          refresh();
        }
      }
    },
    gpus() { refresh(); },
    stats(items) { if (items.some((it) => !["Queued", "Hold", "Running"].includes(it.state))) refresh(); },
  };

  // ------------------------------------------------------------ the event stream

  let source = null;
  let daemon = null;
  let lost = false;
  let tries = 0;

  function connect() {
    source = new EventSource("/events");
    source.addEventListener("hello", (e) => {
      const d = JSON.parse(e.data);
      if (daemon && (daemon.pid !== d.pid || daemon.started !== d.started)) {
        say("gflowd restarted — reconnected, live", "ok");
        refresh();
      } else if (lost) {
        say("reconnected, live", "ok");
        refresh();
      } else {
        say("live", "ok");
      }
      daemon = d;
      lost = false;
      tries = 0;
      if (page === "job") followLog();
    });
    source.addEventListener("jobs", (e) => {
      const h = handlers[page];
      if (h) h(JSON.parse(e.data));
    });
    source.addEventListener("gpus", () => { if (page === "gpus") refresh(); });
    source.addEventListener("reset", () => refresh());
    source.onerror = () => {
      if (!source) return;
      source.close();
      source = null;
      lost = true;
      say("gflowd is not reachable — reconnecting…", "bad");
      setTimeout(reconnect, tries++ < 30 ? 1000 : 5000);
    };
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function genuine(proof, nonce) {
    if (!window.crypto || !crypto.subtle || !key) return false;
    const raw = new Uint8Array(key.match(/../g).map((h) => parseInt(h, 16)));
    const k = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return hex(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(nonce))) === proof;
  }

  // Before sending the token again, make sure the daemon on this port is ours: another
  // program could have taken the port while gflowd was down.
  async function reconnect() {
    let answer;
    const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
    try {
      const r = await fetch(`/hello?u=${uid}&n=${nonce}`, { credentials: "omit", cache: "no-store" });
      answer = await r.json();
    } catch (e) {
      setTimeout(reconnect, tries++ < 30 ? 1000 : 5000);
      return;
    }
    if (await genuine(answer.proof, nonce)) {
      connect();
    } else {
      say("not reconnecting: this port no longer answers as your gflowd (or your token was replaced) — run gflow web", "bad");
    }
  }

  // ------------------------------------------------------------ the job page: log

  let logSource = null;
  let logOffset = null;
  let logDone = false;
  const pre = document.getElementById("log");
  const logState = document.getElementById("log-state");
  const follow = document.getElementById("follow");
  const MAX_LOG = 2 * 1024 * 1024;

  function followLog() {
    if (!pre || logSource || logDone) return;
    logSource = new EventSource(`/job/${jobId}/log` + (logOffset !== null ? `?offset=${logOffset}` : ""));
    logSource.addEventListener("chunk", (e) => {
      const d = JSON.parse(e.data);
      logOffset = d.o;
      pre.append(document.createTextNode(d.t));
      if (pre.textContent.length > MAX_LOG) pre.textContent = pre.textContent.slice(-MAX_LOG / 2);
      if (follow && follow.checked) pre.scrollTop = pre.scrollHeight;
    });
    logSource.addEventListener("opened", (e) => {
      const d = JSON.parse(e.data);
      logOffset = d.o;
      logState.textContent = d.skipped ? "following; the start of this long log is left out (Whole log has it)" : "following";
    });
    logSource.addEventListener("waiting", (e) => {
      logState.textContent = JSON.parse(e.data).note;
    });
    logSource.addEventListener("end", (e) => {
      const d = JSON.parse(e.data);
      logDone = true;
      logState.textContent = d.note || "the job has ended: this is all of its output";
      logSource.close();
      logSource = null;
    });
    logSource.onerror = () => {
      logSource.close();
      logSource = null; // the main stream reconnects, then follows again from logOffset
    };
  }

  // ------------------------------------------------------------ actions, with confirmation

  const dialog = document.getElementById("confirm");
  const PROMPTS = {
    cancel: ["Cancel job {id}? What it changes:", "Cancel it"],
    hold: ["Hold job {id}? It will not start until it is released.", "Hold it"],
    release: ["Release job {id}? It may start as soon as it can.", "Release it"],
    redo: ["Submit job {id} again, as a new job? These jobs would run again:", "Redo"],
  };

  async function api(path, init) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  }

  function post(verb, data) {
    return api(`/api/jobs/${verb}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data),
    });
  }

  async function plan(verb, id) {
    const list = document.getElementById("confirm-list");
    list.replaceChildren();
    let lines = [];
    if (verb === "cancel") {
      const r = await post("cancel", { ids: id, dry_run: true });
      lines = r.jobs.map((j) => `${j.id} ${j.name}: ${j.action}`);
    } else if (verb === "redo") {
      const cascade = document.getElementById("cascade").checked ? 1 : 0;
      const r = await api(`/api/redo-plan?id=${id}&cascade=${cascade}`);
      lines = r.jobs.map((j) => `${j.id} ${j.name} (${j.state})`);
    }
    for (const line of lines) {
      const li = document.createElement("li");
      li.textContent = line;
      list.append(li);
    }
  }

  async function ask(verb, id) {
    const [text, yes] = PROMPTS[verb];
    document.getElementById("confirm-text").textContent = text.replace("{id}", id);
    document.getElementById("confirm-yes").textContent = yes;
    document.getElementById("confirm-error").textContent = "";
    document.getElementById("cascade-box").hidden = verb !== "redo";
    document.getElementById("cascade").checked = false;
    dialog.dataset.verb = verb;
    dialog.dataset.id = id;
    try {
      await plan(verb, id);
    } catch (e) {
      document.getElementById("confirm-error").textContent = e.message;
    }
    dialog.showModal();
    document.getElementById("confirm-no").focus();
  }

  async function perform(verb, id) {
    const out = document.getElementById("action-result");
    const data = verb === "redo"
      ? { id: String(id), cascade: document.getElementById("cascade").checked }
      : { ids: String(id) };
    try {
      const r = await post(verb, data);
      const done = r.jobs.map((j) => verb === "redo" ? `job ${j.redo_of} runs again as job ${j.id}` : `job ${j.id}: ${j.action}`);
      out.textContent = [...done, ...r.errors].join("; ");
      out.dataset.kind = "ok";
    } catch (e) {
      out.textContent = e.message;
      out.dataset.kind = "bad";
    }
    refresh();
  }

  if (dialog) {
    document.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (b) ask(b.dataset.action, b.dataset.job);
    });
    document.getElementById("cascade").addEventListener("change", () => plan("redo", dialog.dataset.id).catch(() => {}));
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "ok") perform(dialog.dataset.verb, dialog.dataset.id);
    });
  }

  // ------------------------------------------------------------ hidden tabs let go

  // A browser opens at most 6 connections to one server over plain HTTP: a hidden tab
  // closes its streams, and catches up (after checking it is still its gflowd) when seen.
  let hidden = false;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && source) {
      hidden = true;
      source.onerror = null;
      source.close();
      source = null;
      if (logSource) { logSource.close(); logSource = null; }
    } else if (document.visibilityState === "visible" && hidden) {
      hidden = false;
      lost = true;
      reconnect();
    }
  });

  // ------------------------------------------------------------ the graph: fit to width

  const fitBox = document.getElementById("fit");
  function fit() {
    const g = document.querySelector(".graph");
    if (g && fitBox) g.classList.toggle("fitted", fitBox.checked);
  }
  if (fitBox) fitBox.addEventListener("change", fit);

  connect();
})();
