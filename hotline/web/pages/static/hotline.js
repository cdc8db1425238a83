// Hotline's page runtime (no build step, no third-party code). One global: window.Hotline.
//
//   Hotline.page                  what the server put in <script id="hotline-page"> (csrf, lang, user, role,
//                                 agent, scopes, plus the page's own data)
//   Hotline.t(key, params)        the page language's text; "{name}" is replaced from params
//   Hotline.api(method, path, body, {signal, form})
//                                 fetch JSON with the session's X-CSRF-Token; resolves to the JSON body;
//                                 rejects with Hotline.ApiError {status, code, message, field}; after a 401
//                                 the session is checked and, if it is over, the browser goes to /login
//   Hotline.showError(err, form)  the error in the page's alert bar, naming the field; marks the field in form
//   Hotline.flash(text, kind)     a message in the alert bar ("error" | "ok" | "info")
//   Hotline.stream(events, {onEvent, onReset, onStatus, since})
//                                 the event stream (/ws/events): reconnects with exponential back-off and
//                                 jitter, resumes from the last position (and stream id); onReset() =
//                                 reload from REST (the server could not resume: restarted, or too far behind)
//   Hotline.el(tag, attrs, ...children), Hotline.duration(s), Hotline.number(n), Hotline.percent(x),
//   Hotline.ask({title, text, fields, ok}) -> Promise of {name: value} or null (a modal form)
(function () {
  "use strict";

  function readJson(id) {
    const node = document.getElementById(id);
    if (!node) return {};
    try {
      return JSON.parse(node.textContent || "{}");
    } catch (e) {
      return {};
    }
  }

  const page = readJson("hotline-page");
  const catalog = readJson("hotline-i18n");
  const has = Object.prototype.hasOwnProperty;

  function t(key, params) {
    let text = has.call(catalog, key) ? catalog[key] : key;
    if (params) {
      text = text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, function (m, name) {
        return has.call(params, name) ? String(params[name]) : m;
      });
    }
    return text;
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const name of Object.keys(attrs)) {
        const value = attrs[name];
        if (value === null || value === undefined || value === false) continue;
        if (name === "text") node.textContent = String(value);
        else if (name === "class") node.className = value;
        else if (name === "dataset") Object.assign(node.dataset, value);
        else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
        else node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    const value = String(text);
    if (node && node.textContent !== value) node.textContent = value;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    let s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const pad = function (n) { return n < 10 ? "0" + n : String(n); };
    return h > 0 ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function percent(ratio) {
    if (ratio === null || ratio === undefined || !isFinite(ratio)) return "–";
    return Math.round(ratio * 100) + "%";
  }

  function number(n) {
    return n === null || n === undefined ? "–" : String(n);
  }

  function since(iso) {
    const at = Date.parse(iso);
    return isFinite(at) ? (Date.now() - at) / 1000 : null;
  }

  // ------------------------------------------------------------------ alert bar
  const flashBox = document.getElementById("hotline-flash");
  let flashTimer = null;

  function flash(text, kind) {
    if (!flashBox) return;
    flashBox.querySelector(".flash-text").textContent = text;
    flashBox.dataset.kind = kind || "error";
    flashBox.hidden = false;
    clearTimeout(flashTimer);
    if (kind === "ok" || kind === "info") flashTimer = setTimeout(clearFlash, 4000);
  }

  function clearFlash() {
    if (flashBox) flashBox.hidden = true;
  }

  if (flashBox) flashBox.querySelector(".flash-close").addEventListener("click", clearFlash);

  // ------------------------------------------------------------------ REST
  class ApiError extends Error {
    constructor(status, code, message, field, details) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.field = field || null;
      this.details = details || null;
    }
  }

  function loginUrl() {
    return "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  let checking = null;
  function checkSession() {
    if (checking) return checking;
    checking = fetch("/api/v1/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) location.assign(loginUrl());
      })
      .catch(function () {})
      .finally(function () {
        checking = null;
      });
    return checking;
  }

  async function api(method, path, body, options) {
    const opts = options || {};
    // errors come back in the page's language (the server translates the phrases it knows)
    const headers = { Accept: "application/json", "Accept-Language": page.lang || "en" };
    if (page.csrf) headers["X-CSRF-Token"] = page.csrf;
    const init = { method: method, headers: headers, credentials: "same-origin", signal: opts.signal };
    if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      if (e && e.name === "AbortError") throw e;
      throw new ApiError(0, "network", t("error.network"), null);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) {
      const err = (data && data.error) || {};
      // 401 is also a wrong PIN or password: only an ended session sends the browser to the login page
      if (response.status === 401 && !opts.noLoginRedirect) checkSession();
      throw new ApiError(
        response.status,
        err.code || "http_" + response.status,
        err.message || t("error.http", { status: response.status }),
        err.field,
        err.details
      );
    }
    return data;
  }

  // "body.password" -> "password"; "query.limit" -> "limit"
  function fieldName(field) {
    if (!field) return "";
    const parts = String(field).split(".");
    return parts[0] === "body" || parts[0] === "query" || parts[0] === "path" ? parts.slice(1).join(".") : field;
  }

  function clearInvalid(form) {
    if (!form) return;
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(err, form) {
    const message = err && err.message ? err.message : String(err);
    const field = err && err.field ? fieldName(err.field) : "";
    clearInvalid(form);
    let label = field;
    if (form && field) {
      const input = form.querySelector('[name="' + CSS.escape(field) + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
        const lab = input.closest("label");
        if (lab && lab.firstChild && lab.firstChild.nodeType === Node.TEXT_NODE) label = lab.firstChild.textContent.trim();
      }
    }
    const text = field && message.indexOf(field) !== 0 ? t("error.field", { field: label, message: message }) : message;
    flash(text, "error");
    return text;
  }

  // ------------------------------------------------------------------ modal form
  let askOpen = null;

  function ask(spec) {
    if (askOpen) askOpen.close();
    return new Promise(function (resolve) {
      const dialog = el("dialog", { class: "ask", "data-testid": "ask-dialog" });
      const form = el("form", { method: "dialog", class: "form" });
      form.append(el("h2", { text: spec.title }));
      if (spec.text) form.append(el("p", { text: spec.text }));
      for (const f of spec.fields || []) {
        let input;
        if (f.options) {
          input = el("select", { name: f.name });
          for (const o of f.options) input.append(el("option", { value: o.value, text: o.label }));
        } else {
          input = el("input", { name: f.name, value: f.value || "", type: f.type || "text", required: f.required,
            pattern: f.pattern, maxlength: f.maxlength || 255, autocomplete: "off" });
        }
        if (f.value !== undefined) input.value = f.value;
        form.append(el("label", null, f.label, input));
      }
      const buttons = el("div", { class: "buttons" },
        el("button", { type: "submit", value: "ok", class: "primary", "data-testid": "ask-ok", text: spec.ok || t("common.ok") }),
        el("button", { type: "button", value: "cancel", "data-testid": "ask-cancel", text: t("common.cancel"),
          onclick: function () { dialog.close("cancel"); } })
      );
      form.append(buttons);
      dialog.append(form);
      document.body.append(dialog);
      form.addEventListener("submit", function (ev) {
        if (!form.checkValidity()) {
          ev.preventDefault();
          form.reportValidity();
        }
      });
      dialog.addEventListener("close", function () {
        const values = {};
        for (const node of form.elements) if (node.name) values[node.name] = node.value;
        dialog.remove();
        askOpen = null;
        resolve(dialog.returnValue === "ok" ? values : null);
      });
      askOpen = dialog;
      dialog.showModal();
    });
  }

  // ------------------------------------------------------------------ event stream
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;

  class EventStream {
    constructor(events, handlers) {
      this.events = events;
      this.onEvent = handlers.onEvent || function () {};
      this.onReset = handlers.onReset || function () {};
      this.onStatus = handlers.onStatus || function () {};
      this.position = handlers.since === undefined ? null : handlers.since;
      this.stream = null;
      this.ws = null;
      this.delay = BACKOFF_MIN_MS;
      this.timer = null;
      this.closed = false;
      this.status = "connecting";
      this.connects = 0;
      this._onVisible = this._onVisible.bind(this);
      document.addEventListener("visibilitychange", this._onVisible);
      this._connect();
    }

    setPosition(position, stream) {
      // after a REST reload: resume the stream from the state's position
      this.position = position;
      if (stream) this.stream = stream;
    }

    _setStatus(status) {
      if (this.status === status) return;
      this.status = status;
      document.documentElement.dataset.stream = status;
      this.onStatus(status);
    }

    _connect() {
      if (this.closed) return;
      clearTimeout(this.timer);
      this.timer = null;
      this._setStatus("connecting");
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events";
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this._retry();
        return;
      }
      this.ws = ws;
      this.opened = false;
      const self = this;
      ws.onopen = function () {
        self.connects += 1;
        ws.send(JSON.stringify({ type: "subscribe", events: self.events, since: self.position, stream: self.stream }));
      };
      ws.onmessage = function (msg) {
        if (self.ws !== ws) return;
        let m;
        try {
          m = JSON.parse(msg.data);
        } catch (e) {
          return;
        }
        self._message(m);
      };
      ws.onclose = function (ev) {
        if (self.ws !== ws) return;
        self.ws = null;
        if (self.closed) return;
        if (ev.code === 4401 || ev.code === 4001) {
          location.assign(loginUrl()); // session over
          return;
        }
        // refused in the handshake (the browser shows only 1006): if the session is over, api() goes to /login
        if (!self.opened) checkSession();
        self._retry();
      };
      ws.onerror = function () {
        // onclose follows and schedules the retry; nothing to log (the console must stay clean)
      };
    }

    _message(m) {
      // hello (on connect) -> our subscribe is answered by an optional reset, then subscribed, then events
      if (m.type === "hello") {
        this.opened = true;
      } else if (m.type === "subscribed") {
        this._setStatus("open"); // from here on every matching event reaches us
        this.delay = BACKOFF_MIN_MS; // a working subscription: the next failure starts the back-off afresh
        if (m.stream) this.stream = m.stream;
        if (this.position === null && typeof m.position === "number") this.position = m.position;
      } else if (m.type === "event") {
        if (typeof m.position === "number") {
          if (this.position !== null && m.position <= this.position) return; // already seen (replay overlap)
          this.position = m.position;
        }
        try {
          this.onEvent(m);
        } catch (e) {
          window.setTimeout(function () { throw e; }); // a page bug shows up, the stream keeps going
        }
      } else if (m.type === "reset") {
        if (typeof m.position === "number") this.position = m.position;
        if (m.stream) this.stream = m.stream;
        this.onReset();
      } else if (m.type === "error") {
        flash(t("stream.error", { message: m.message || m.code || "" }), "error");
      }
    }

    _retry() {
      if (this.closed || this.timer !== null) return;
      this._setStatus("reconnecting");
      const wait = Math.min(BACKOFF_MAX_MS, this.delay) * (0.8 + Math.random() * 0.4);
      this.delay = Math.min(BACKOFF_MAX_MS, this.delay * 2);
      const self = this;
      this.timer = setTimeout(function () {
        self.timer = null;
        self._connect();
      }, wait);
    }

    _onVisible() {
      // a tab coming back (or a laptop waking up) reconnects at once instead of waiting out the back-off
      if (document.visibilityState === "visible" && this.ws === null && !this.closed) {
        this.delay = BACKOFF_MIN_MS;
        this._connect();
      }
    }

    close() {
      this.closed = true;
      clearTimeout(this.timer);
      document.removeEventListener("visibilitychange", this._onVisible);
      if (this.ws) this.ws.close(1000);
      this.ws = null;
      this._setStatus("closed");
    }
  }

  function stream(events, handlers) {
    return new EventStream(events, handlers || {});
  }

  // ------------------------------------------------------------------ language switch
  const langSwitch = document.getElementById("language-switch");
  if (langSwitch) {
    langSwitch.addEventListener("change", async function () {
      try {
        await api("PATCH", "/api/v1/auth/me", { language: langSwitch.value });
        location.reload();
      } catch (err) {
        showError(err);
        langSwitch.value = page.lang;
      }
    });
  }

  window.Hotline = {
    page: page,
    t: t,
    el: el,
    setText: setText,
    api: api,
    ApiError: ApiError,
    showError: showError,
    clearInvalid: clearInvalid,
    flash: flash,
    clearFlash: clearFlash,
    ask: ask,
    stream: stream,
    duration: duration,
    percent: percent,
    number: number,
    since: since,
  };
})();
