// The live monitor: queues (queue.stats events), agents (agent.* events), calls in progress and nodes.
// Calls and nodes are also refreshed over REST every few seconds: not every step of a call is an event,
// and node load is not one at all. Rows are keyed (data-queue, data-agent, data-call-id, data-node) and
// updated in place. Actions (listen / whisper / barge, hang up, pause, unpause, log off) go through the
// REST API and are offered only when the viewer's permissions allow them (Hotline.page.may).
(function () {
  "use strict";
  const H = window.Hotline;
  const may = H.page.may || {};
  const REFRESH_MS = 5000;
  const PHONE_KEY = "hotline.supervisorPhone";
  const streamState = document.getElementById("stream-state");

  // ------------------------------------------------------------------ keyed tables
  // rows: Map key -> {tr, cells: {field: td}, data}; build(item) -> {tr, cells}; update(row, item)
  function table(tbodyId, columns, emptyKey) {
    const tbody = document.getElementById(tbodyId);
    const rows = new Map();
    const empty = H.el("tr", { class: "empty-row" }, H.el("td", { class: "empty", colspan: columns + 1, text: H.t(emptyKey) }));
    tbody.append(empty);
    return { tbody: tbody, rows: rows, empty: empty };
  }

  function sync(t, items, keyOf, build, update) {
    const seen = new Set();
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      let row = t.rows.get(key);
      if (!row) {
        row = build(key);
        t.rows.set(key, row);
      }
      update(row, item);
      const next = previous ? previous.tr.nextSibling : t.tbody.firstChild;
      if (next !== row.tr) t.tbody.insertBefore(row.tr, next);
      previous = row;
    }
    for (const [key, row] of t.rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        t.rows.delete(key);
      }
    }
    t.empty.hidden = t.rows.size > 0;
    if (t.rows.size === 0 && !t.empty.isConnected) t.tbody.append(t.empty);
  }

  function upsert(t, key, item, build, update) {
    let row = t.rows.get(key);
    if (!row) {
      row = build(key);
      t.rows.set(key, row);
      t.tbody.append(row.tr);
      t.empty.hidden = true;
    }
    update(row, item);
  }

  function cells(tr, fields, attrs) {
    const out = {};
    for (const f of fields) {
      const td = H.el("td", { "data-field": f, class: (attrs && attrs[f]) || null });
      out[f] = td;
      tr.append(td);
    }
    return out;
  }

  function badge(td, kind, value, label) {
    let b = td.firstChild;
    if (!b) {
      b = H.el("span", { class: "badge" });
      td.append(b);
    }
    if (b.dataset[kind] !== value) b.dataset[kind] = value;
    H.setText(b, label);
  }

  function time(iso) {
    const at = Date.parse(iso);
    return isFinite(at) ? new Date(at).toLocaleTimeString(H.page.lang === "ru" ? "ru-RU" : "en-GB") : "–";
  }

  // ------------------------------------------------------------------ queues
  const queues = table("queue-rows", 8, "monitor.no_queues");
  const waiting = table("waiting-rows", 4, "monitor.no_waiting");
  const QFIELDS = ["queue", "waiting", "longest", "available", "on_call", "wrap_up", "paused", "service_level", "alarm"];
  const NUM = { waiting: "num", longest: "num", available: "num", on_call: "num", wrap_up: "num", paused: "num", service_level: "num" };

  function buildQueue(key) {
    const tr = H.el("tr", { "data-queue": key });
    return { tr: tr, cells: cells(tr, QFIELDS, NUM), longest: 0, at: 0, waiting: 0 };
  }

  function updateQueue(row, tile) {
    const a = tile.agents || {};
    const c = row.cells;
    row.waiting = tile.waiting || 0;
    row.longest = tile.longest_wait_s || 0;
    row.at = performance.now();
    H.setText(c.queue, tile.queue);
    H.setText(c.waiting, H.number(tile.waiting));
    H.setText(c.longest, H.duration(row.longest));
    H.setText(c.available, H.number(a.available));
    H.setText(c.on_call, H.number((a.on_call || 0) + (a.ringing || 0)));
    H.setText(c.wrap_up, H.number(a.wrap_up));
    H.setText(c.paused, H.number(a.paused));
    H.setText(c.service_level, H.percent((tile.today || {}).service_level));
    const level = tile.alarm === "red" || tile.alarm === "amber" ? tile.alarm : "ok";
    badge(c.alarm, "level", level, H.t("alarm." + level));
  }

  const WFIELDS = ["queue", "caller", "position", "wait", "node"];
  function buildWaiting(key) {
    const tr = H.el("tr", { "data-waiting": key });
    return { tr: tr, cells: cells(tr, WFIELDS, { position: "num", wait: "num" }) };
  }
  function updateWaiting(row, w) {
    row.wait = w.wait_s || 0;
    row.at = performance.now();
    H.setText(row.cells.queue, w.queue);
    H.setText(row.cells.caller, w.caller_name ? w.caller + " (" + w.caller_name + ")" : w.caller || "–");
    H.setText(row.cells.position, H.number(w.position));
    H.setText(row.cells.wait, H.duration(row.wait));
    H.setText(row.cells.node, w.node || "–");
  }

  // ------------------------------------------------------------------ agents
  const agents = table("agent-rows", 6, "monitor.no_agents");
  const AFIELDS = ["agent", "name", "state", "in_state", "phone", "reason", "actions"];

  function buildAgent(key) {
    const tr = H.el("tr", { "data-agent": key });
    const row = { tr: tr, cells: cells(tr, AFIELDS, { in_state: "num" }), since: null, buttons: {} };
    const box = row.cells.actions;
    const add = function (action, label, handler, cls) {
      const b = H.el("button", { type: "button", class: "small " + (cls || ""), "data-action": action, text: H.t(label), onclick: function () { handler(key, b); } });
      row.buttons[action] = b;
      box.append(b, " ");
    };
    if (may.spy) {
      add("listen", "monitor.listen", spyAction("listen"));
      add("whisper", "monitor.whisper", spyAction("whisper"));
      add("barge", "monitor.barge", spyAction("barge"));
    }
    if (may.agents) {
      add("pause", "monitor.pause", pauseAgent);
      add("unpause", "monitor.unpause", unpauseAgent);
      add("logoff", "monitor.logoff", logoffAgent, "danger");
    }
    return row;
  }

  function updateAgent(row, a) {
    const c = row.cells;
    row.state = a.state;
    row.since = a.since ? Date.parse(a.since) : null;
    H.setText(c.agent, a.agent);
    H.setText(c.name, a.name || "");
    badge(c.state, "state", a.state, H.t("state." + a.state));
    H.setText(c.in_state, row.since ? H.duration((Date.now() - row.since) / 1000) : "–");
    H.setText(c.phone, a.phone || "–");
    H.setText(c.reason, a.state === "paused" ? a.pause_reason || "" : "");
    const loggedIn = a.state !== "logged_out";
    const talking = a.state === "on_call";
    const show = function (name, on) {
      if (row.buttons[name]) row.buttons[name].hidden = !on;
    };
    show("listen", talking);
    show("whisper", talking);
    show("barge", talking);
    show("pause", loggedIn && a.state !== "paused");
    show("unpause", a.state === "paused");
    show("logoff", loggedIn);
  }

  // ------------------------------------------------------------------ calls and nodes
  const calls = table("call-rows", 8, "monitor.no_calls");
  const CFIELDS = ["started", "duration", "caller", "did", "queue", "agent", "node", "status", "actions"];

  function buildCall(key) {
    const tr = H.el("tr", { "data-call-id": key });
    const row = { tr: tr, cells: cells(tr, CFIELDS, { duration: "num" }), started: null };
    if (may.hangup) {
      row.cells.actions.append(H.el("button", { type: "button", class: "small danger", "data-action": "hangup",
        text: H.t("monitor.hangup"), onclick: function () { hangupCall(key); } }));
    }
    return row;
  }

  function updateCall(row, c) {
    row.started = Date.parse(c.started_at);
    H.setText(row.cells.started, time(c.started_at));
    H.setText(row.cells.duration, H.duration((Date.now() - row.started) / 1000));
    H.setText(row.cells.caller, c.caller_name ? (c.caller_num || "") + " (" + c.caller_name + ")" : c.caller_num || "–");
    H.setText(row.cells.did, c.did || "–");
    H.setText(row.cells.queue, c.queue_name || "–");
    H.setText(row.cells.agent, c.agent_number || "–");
    H.setText(row.cells.node, c.node || "–");
    H.setText(row.cells.status, c.answered_at ? H.t("monitor.answered") : H.t("monitor.not_answered"));
  }

  const nodes = table("node-rows", 5, "monitor.no_nodes");
  const NFIELDS = ["node", "address", "state", "ami", "load", "active_calls"];
  function buildNode(key) {
    const tr = H.el("tr", { "data-node": key });
    return { tr: tr, cells: cells(tr, NFIELDS, { load: "num", active_calls: "num" }) };
  }
  function updateNode(row, n) {
    H.setText(row.cells.node, n.name);
    H.setText(row.cells.address, n.address || "–");
    badge(row.cells.state, "level", n.state === "up" ? "ok" : "red", n.state);
    H.setText(row.cells.ami, n.ami_connected ? H.t("monitor.connected") : H.t("monitor.disconnected"));
    H.setText(row.cells.load, n.load === null || n.load === undefined ? "–" : String(n.load));
    H.setText(row.cells.active_calls, H.number(n.active_calls));
  }

  // ------------------------------------------------------------------ actions
  function spyPhone() {
    try {
      return localStorage.getItem(PHONE_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function showSpyPhone() {
    const node = document.getElementById("spy-phone");
    if (node) H.setText(node, spyPhone() || "–");
  }

  async function askSpyPhone() {
    const v = await H.ask({
      title: H.t("monitor.spy_phone_title"),
      text: H.t("monitor.spy_phone_text"),
      fields: [{ name: "phone", label: H.t("monitor.phone"), value: spyPhone(), required: true, pattern: "[A-Za-z0-9._\\-]{1,64}" }],
    });
    if (!v) return "";
    try {
      localStorage.setItem(PHONE_KEY, v.phone);
    } catch (e) {
      // private mode: remembered for this page only
    }
    showSpyPhone();
    return v.phone;
  }

  function spyAction(mode) {
    return async function (agent) {
      const phone = spyPhone() || (await askSpyPhone());
      if (!phone) return;
      try {
        await H.api("POST", "/api/v1/calls/spy", { agent: agent, supervisor_phone: phone, mode: mode });
        H.flash(H.t("monitor.spy_started", { phone: phone, agent: agent }), "ok");
      } catch (err) {
        H.showError(err);
      }
    };
  }

  let reasons = null;
  async function pauseAgent(agent) {
    try {
      if (reasons === null) reasons = (await H.api("GET", "/api/v1/pause-reasons")).items;
      const options = [{ value: "", label: H.t("monitor.no_reason") }].concat(
        reasons.map(function (r) { return { value: r.name, label: r.name }; })
      );
      const v = await H.ask({ title: H.t("monitor.pause_title", { agent: agent }), fields: [{ name: "reason", label: H.t("monitor.reason"), options: options }], ok: H.t("monitor.pause") });
      if (!v) return;
      upsertAgent(await H.api("POST", "/api/v1/agents/" + encodeURIComponent(agent) + "/pause", { reason: v.reason }));
    } catch (err) {
      H.showError(err);
    }
  }

  async function unpauseAgent(agent) {
    try {
      upsertAgent(await H.api("POST", "/api/v1/agents/" + encodeURIComponent(agent) + "/unpause"));
    } catch (err) {
      H.showError(err);
    }
  }

  async function logoffAgent(agent) {
    const v = await H.ask({ title: H.t("monitor.logoff_title", { agent: agent }), ok: H.t("monitor.logoff") });
    if (!v) return;
    try {
      upsertAgent(await H.api("POST", "/api/v1/agents/" + encodeURIComponent(agent) + "/logoff"));
    } catch (err) {
      H.showError(err);
    }
  }

  async function hangupCall(callId) {
    const v = await H.ask({ title: H.t("monitor.hangup_title"), text: callId, ok: H.t("monitor.hangup") });
    if (!v) return;
    try {
      await H.api("POST", "/api/v1/calls/" + encodeURIComponent(callId) + "/hangup", {});
      H.flash(H.t("monitor.hung_up"), "ok");
      refresh();
    } catch (err) {
      H.showError(err);
    }
  }

  const spyChange = document.getElementById("spy-phone-change");
  if (spyChange) spyChange.addEventListener("click", askSpyPhone);
  showSpyPhone();

  // ------------------------------------------------------------------ data
  function upsertAgent(a) {
    upsert(agents, String(a.agent), a, buildAgent, updateAgent);
  }

  async function loadState() {
    const [q, a] = await Promise.all([H.api("GET", "/api/v1/queues/status"), H.api("GET", "/api/v1/agents/status")]);
    sync(queues, q.items, function (x) { return x.queue; }, buildQueue, updateQueue);
    sync(agents, a.items, function (x) { return String(x.agent); }, buildAgent, updateAgent);
    await refresh();
    return q.position;
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const [c, n] = await Promise.all([H.api("GET", "/api/v1/calls/active"), H.api("GET", "/api/v1/nodes/status")]);
      sync(calls, c.items, function (x) { return x.call_id; }, buildCall, updateCall);
      sync(nodes, n.items, function (x) { return x.name; }, buildNode, updateNode);
      const busy = [];
      for (const row of queues.rows.values()) if (row.waiting > 0) busy.push(row.cells.queue.textContent);
      const lists = await Promise.all(busy.map(function (name) {
        return H.api("GET", "/api/v1/queues/" + encodeURIComponent(name) + "/status").then(function (r) { return r.callers || []; });
      }));
      sync(waiting, [].concat.apply([], lists), function (w) { return w.uniqueid || w.call_id; }, buildWaiting, updateWaiting);
    } catch (err) {
      H.showError(err);
    } finally {
      refreshing = false;
    }
  }

  let soon = null;
  function refreshSoon() {
    if (soon === null) soon = setTimeout(function () { soon = null; refresh(); }, 300);
  }

  function onEvent(m) {
    const d = m.data || {};
    if (m.event === "queue.stats") {
      const before = queues.rows.get(d.queue);
      const was = before ? before.waiting : 0;
      upsert(queues, d.queue, d, buildQueue, updateQueue);
      if ((d.waiting || 0) !== was) refreshSoon(); // the list of waiting callers changed
    } else if (m.event.indexOf("agent.") === 0 && d.agent) {
      upsertAgent(d);
    } else if (m.event.indexOf("call.") === 0) {
      refreshSoon();
    }
  }

  function tick() {
    const now = Date.now();
    const perf = performance.now();
    for (const row of agents.rows.values()) if (row.since) H.setText(row.cells.in_state, H.duration((now - row.since) / 1000));
    for (const row of calls.rows.values()) if (row.started) H.setText(row.cells.duration, H.duration((now - row.started) / 1000));
    for (const row of queues.rows.values()) if (row.waiting > 0) H.setText(row.cells.longest, H.duration(row.longest + (perf - row.at) / 1000));
    for (const row of waiting.rows.values()) H.setText(row.cells.wait, H.duration(row.wait + (perf - row.at) / 1000));
  }

  async function start() {
    let position = null;
    try {
      position = await loadState();
    } catch (err) {
      H.showError(err);
    }
    const stream = H.stream(["queue.stats", "agent.*", "call.*"], {
      since: position,
      onEvent: onEvent,
      onReset: async function () {
        try {
          stream.setPosition(await loadState());
        } catch (err) {
          H.showError(err);
        }
      },
      onStatus: function (s) {
        H.setText(streamState, H.t("stream." + s));
        streamState.dataset.state = s;
      },
    });
    window.hotlineMonitor = { stream: stream, refresh: refresh };
    setInterval(refresh, REFRESH_MS);
    setInterval(tick, 1000);
  }

  start();
})();
