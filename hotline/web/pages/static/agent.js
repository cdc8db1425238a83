// The agent page: the agent's state and its buttons, the screen pop when the phone rings (call.screen_pop),
// tags on the current call, click-to-call and today's figures. A supervisor sees the same page read-only
// (Hotline.page.own is false: no state, tag or dial controls are rendered).
(function () {
  "use strict";
  const H = window.Hotline;
  const agent = String(H.page.agentNumber);
  const own = !!H.page.own;
  const base = "/api/v1/agents/" + encodeURIComponent(agent);
  const $ = function (id) { return document.getElementById(id); };
  const stateBadge = $("agent-state");
  const inState = $("agent-in-state");
  const phoneBox = $("agent-phone");
  const streamState = $("stream-state");
  const pop = $("screen-pop");
  let since = null;
  let currentCall = null;
  let status = null;

  // ------------------------------------------------------------------ state
  function renderStatus(s) {
    status = s;
    stateBadge.dataset.state = s.state;
    H.setText(stateBadge, H.t("state." + s.state) + (s.state === "paused" && s.pause_reason ? " · " + s.pause_reason : ""));
    since = s.since ? Date.parse(s.since) : null;
    H.setText(phoneBox, s.phone ? H.t("agent.on_phone", { phone: s.phone }) : "");
    tick();
    if (s.call_id) setCurrentCall(s.call_id);
    if (own) {
      const loggedIn = s.state !== "logged_out";
      $("btn-available").disabled = s.state !== "paused";
      $("btn-pause").disabled = !loggedIn || s.state === "paused";
      $("btn-logoff").disabled = !loggedIn;
      $("agent-login-form").hidden = loggedIn;
    }
  }

  function tick() {
    H.setText(inState, since ? H.duration((Date.now() - since) / 1000) : "");
  }

  async function act(path, body) {
    try {
      renderStatus(await H.api("POST", base + path, body));
      H.clearFlash();
    } catch (err) {
      H.showError(err);
    }
  }

  if (own) {
    $("btn-available").addEventListener("click", function () { act("/unpause"); });
    $("btn-pause").addEventListener("click", function () { act("/pause", { reason: $("pause-reason").value }); });
    $("btn-logoff").addEventListener("click", function () { act("/logoff"); });
    const loginForm = $("agent-login-form");
    loginForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      H.clearInvalid(loginForm);
      const phone = loginForm.elements.phone.value.trim();
      const pin = loginForm.elements.pin.value.trim();
      try {
        renderStatus(await H.api("POST", base + "/login", { phone: phone, pin: pin || null }));
        loginForm.elements.pin.value = "";
        H.clearFlash();
      } catch (err) {
        H.showError(err, loginForm);
      }
    });
  }

  // ------------------------------------------------------------------ screen pop
  function dl(pairs) {
    const list = H.el("dl");
    for (const [label, value, field] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      list.append(H.el("dt", { text: label }), H.el("dd", { "data-field": field || null, text: String(value) }));
    }
    return list;
  }

  function showPop(d) {
    const caller = d.caller || {};
    const set = function (field, value) { H.setText(pop.querySelector('[data-field="' + field + '"]'), value || "–"); };
    set("caller-number", caller.number || H.t("agent.anonymous"));
    set("caller-name", caller.name);
    set("queue", d.queue);
    set("call-id", d.call_id);

    const customerBox = $("pop-customer");
    customerBox.replaceChildren();
    const c = d.customer;
    if (c) {
      const pairs = [
        [H.t("agent.customer_name"), c.name, "customer-name"],
        [H.t("agent.customer_phone"), c.phone, "customer-phone"],
        [H.t("agent.customer_email"), c.email, "customer-email"],
        [H.t("agent.customer_id"), c.external_id || c.id, "customer-id"],
      ];
      for (const key of Object.keys(c.data || {})) pairs.push([key, c.data[key], "customer-data"]);
      customerBox.append(H.el("h3", { text: H.t("agent.customer") }), dl(pairs));
    } else {
      customerBox.append(H.el("p", { class: "muted", text: H.t("agent.no_customer") }));
    }

    const crmBox = $("pop-crm");
    crmBox.replaceChildren();
    if (d.crm) {
      const fields = d.crm.fields || {};
      crmBox.append(H.el("h3", { text: H.t("agent.crm") }), dl(Object.keys(fields).map(function (k) { return [k, fields[k], "crm-field"]; })));
      if (d.crm.url && /^https?:\/\//.test(d.crm.url)) {
        crmBox.append(H.el("p", null, H.el("a", { href: d.crm.url, target: "_blank", rel: "noopener noreferrer", "data-testid": "crm-link", text: H.t("agent.open_crm") })));
      }
    }

    const earlier = $("pop-earlier");
    earlier.replaceChildren();
    const calls = d.earlier_calls || [];
    for (const e of calls) {
      earlier.append(H.el("tr", { "data-call-id": e.call_id },
        H.el("td", { text: new Date(e.started_at).toLocaleString(H.page.lang === "ru" ? "ru-RU" : "en-GB") }),
        H.el("td", { text: e.status }),
        H.el("td", { text: e.queue_name || "–" }),
        H.el("td", { text: e.agent_number || "–" }),
        H.el("td", { class: "num", text: H.duration(e.talk_s) })));
    }
    if (!calls.length) earlier.append(H.el("tr", null, H.el("td", { colspan: 5, class: "empty", text: H.t("agent.no_earlier") })));

    const errors = $("pop-errors");
    errors.hidden = !(d.errors && d.errors.length);
    H.setText(errors, d.errors && d.errors.length ? H.t("agent.lookup_errors", { errors: d.errors.join("; ") }) : "");
    pop.dataset.callId = d.call_id || "";
    pop.hidden = false;
    if (d.call_id) setCurrentCall(d.call_id);
  }

  $("pop-close").addEventListener("click", function () { pop.hidden = true; });

  // ------------------------------------------------------------------ current call: tags, click-to-call
  function setCurrentCall(callId) {
    if (!own || callId === currentCall) return;
    currentCall = callId;
    H.setText($("current-call"), callId);
    H.setText($("call-tags"), "");
  }

  if (own) {
    const tagForm = $("tag-form");
    tagForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      H.clearInvalid(tagForm);
      if (!currentCall) {
        H.flash(H.t("agent.no_call"), "error");
        return;
      }
      const body = { name: tagForm.elements.name.value, value: tagForm.elements.value.value.trim() };
      try {
        const r = await H.api("PUT", "/api/v1/calls/" + encodeURIComponent(currentCall) + "/tags", body);
        H.setText($("call-tags"), (r.tags || []).map(function (tag) { return tag.name + " = " + tag.value; }).join(", "));
        tagForm.elements.value.value = "";
        H.flash(H.t("agent.tag_saved"), "ok");
      } catch (err) {
        H.showError(err, tagForm);
      }
    });

    const dialForm = $("dial-form");
    dialForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      H.clearInvalid(dialForm);
      const number = dialForm.elements.number.value.replace(/[\s()-]/g, "");
      try {
        const r = await H.api("POST", "/api/v1/calls/originate", { agent: agent, number: number });
        setCurrentCall(r.call_id);
        H.flash(H.t("agent.dialling", { number: number }), "ok");
      } catch (err) {
        H.showError(err, dialForm);
      }
    });
  }

  // ------------------------------------------------------------------ today's figures
  let statsTimer = null;
  async function loadStats() {
    try {
      const s = await H.api("GET", base + "/stats/today");
      const set = function (field, value) { H.setText(document.querySelector('#stats-panel [data-field="' + field + '"]'), value); };
      set("answered", H.number(s.answered));
      set("talk_s", H.duration(s.talk_s));
      set("avg_talk_s", H.duration(s.avg_talk_s));
      set("hung_up_first", H.number(s.hung_up_first));
      set("missed_total", H.number(s.missed_total));
    } catch (err) {
      H.showError(err);
    }
  }
  function statsSoon() {
    // a call's record is written by the journal shortly after its end: read the figures a moment later
    clearTimeout(statsTimer);
    statsTimer = setTimeout(loadStats, 1500);
  }

  // ------------------------------------------------------------------ data
  async function loadState() {
    renderStatus(await H.api("GET", base + "/status"));
    loadStats();
  }

  function onEvent(m) {
    const d = m.data || {};
    if (String(d.agent) !== agent) return;
    if (m.event === "call.screen_pop") showPop(d);
    else if (m.event === "call.ended") statsSoon();
    else if (m.event.indexOf("agent.") === 0) renderStatus(Object.assign({}, status || {}, d));
  }

  async function start() {
    if (own) {
      try {
        const reasons = (await H.api("GET", "/api/v1/pause-reasons")).items;
        const select = $("pause-reason");
        for (const r of reasons) select.append(H.el("option", { value: r.name, text: r.name }));
      } catch (err) {
        H.showError(err);
      }
    }
    try {
      await loadState();
    } catch (err) {
      H.showError(err);
    }
    const stream = H.stream(["agent.*", "call.screen_pop", "call.ended"], {
      onEvent: onEvent,
      onReset: function () { loadState().catch(H.showError); },
      onStatus: function (s) {
        H.setText(streamState, H.t("stream." + s));
        streamState.dataset.state = s;
      },
    });
    window.hotlineAgent = { stream: stream };
    setInterval(tick, 1000);
  }

  start();
})();
