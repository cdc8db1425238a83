// The wallboard: one tile per queue, updated from `queue.stats` events (the event carries the whole tile),
// loaded from GET /api/v1/queues/status at start and after a reset. Runs unattended for days, so:
// - no polling while the stream is up; a reconnect resumes from the last position, a reset reloads via REST;
// - bounded memory: one tile element per queue, updated in place; one timer for the clock and the waits;
// - a tile going red beeps (WebAudio, enabled by a click: browsers start audio only after a user gesture).
// Test and benchmark hooks: each tile has data-queue, each value data-field; window.hotlineLastEventAt[queue]
// = {position, eventTs, receivedAt, renderedAt, paintedAt} (ms since the epoch); window.hotlineWallboard.beeps.
(function () {
  "use strict";
  const H = window.Hotline;
  const box = document.getElementById("wb-tiles");
  const empty = document.getElementById("wb-empty");
  const streamState = document.getElementById("stream-state");
  const soundButton = document.getElementById("wb-sound");
  const clock = document.getElementById("wb-clock");
  const tiles = new Map(); // queue -> {root, fields, alarm, longest, longestAt, waiting}
  const RETRY_MS = 10000;
  const KEEPALIVE_MS = 10 * 60 * 1000;

  const lastEventAt = {};
  window.hotlineLastEventAt = lastEventAt;
  const state = { beeps: 0, resyncs: 0, tiles: tiles };
  window.hotlineWallboard = state;

  // ------------------------------------------------------------------ tiles
  const BIG = [
    ["waiting", "wallboard.waiting"],
    ["longest_wait_s", "wallboard.longest_wait"],
    ["service_level", "wallboard.service_level"],
    ["abandon_rate", "wallboard.abandon_rate"],
  ];
  const SMALL = [
    ["available", "wallboard.available"],
    ["on_call", "wallboard.on_call"],
    ["wrap_up", "wallboard.wrap_up"],
    ["paused", "wallboard.paused"],
  ];

  function stat(field, key) {
    const value = H.el("span", { class: "value", "data-field": field, text: "–" });
    return [H.el("div", { class: "wb-stat" }, H.el("span", { class: "label", text: H.t(key) }), value), value];
  }

  function createTile(queue) {
    const fields = {};
    const alarm = H.el("span", { class: "wb-alarm", "data-field": "alarm", text: H.t("alarm.ok") });
    const main = H.el("div", { class: "wb-main" });
    const small = H.el("div", { class: "wb-small" });
    for (const [field, key] of BIG) {
      const [node, value] = stat(field, key);
      main.append(node);
      fields[field] = value;
    }
    for (const [field, key] of SMALL) {
      const [node, value] = stat(field, key);
      small.append(node);
      fields[field] = value;
    }
    const root = H.el(
      "section",
      { class: "wb-tile", "data-queue": queue, "data-alarm": "ok", "data-testid": "tile" },
      H.el("h2", null, H.el("span", { class: "wb-name", text: queue }), alarm),
      main,
      small
    );
    fields.alarm = alarm;
    const tile = { root: root, fields: fields, alarm: "ok", longest: 0, longestAt: 0, waiting: 0 };
    // keep the tiles sorted by queue name
    let before = null;
    for (const [name, other] of tiles) {
      if (name > queue && (before === null || name < before.root.dataset.queue)) before = other;
    }
    box.insertBefore(root, before ? before.root : null);
    tiles.set(queue, tile);
    empty.hidden = true;
    return tile;
  }

  function render(data) {
    const queue = String(data.queue || "");
    if (!queue) return null;
    const tile = tiles.get(queue) || createTile(queue);
    const f = tile.fields;
    const agents = data.agents || {};
    const today = data.today || {};
    tile.waiting = Number(data.waiting) || 0;
    tile.longest = Number(data.longest_wait_s) || 0;
    tile.longestAt = performance.now(); // also when the tile was last drawn
    H.setText(f.waiting, H.number(data.waiting));
    H.setText(f.longest_wait_s, H.duration(tile.longest));
    H.setText(f.service_level, H.percent(today.service_level));
    H.setText(f.abandon_rate, H.percent(today.abandon_rate));
    H.setText(f.available, H.number(agents.available));
    H.setText(f.on_call, H.number((agents.on_call || 0) + (agents.ringing || 0)));
    H.setText(f.wrap_up, H.number(agents.wrap_up));
    H.setText(f.paused, H.number(agents.paused));
    const level = data.alarm === "red" || data.alarm === "amber" ? data.alarm : "ok";
    if (level !== tile.alarm) {
      if (level === "red") alarm();
      tile.alarm = level;
      tile.root.dataset.alarm = level;
      H.setText(f.alarm, H.t("alarm." + level));
    }
    return tile;
  }

  // Every change on screen costs the browser a frame (bench/WEB.md: ~5 ms of CPU in headless Chromium), so
  // the once-a-second tick draws only what no event drew in the last second: a tile that an event redrew
  // already shows the server's fresh longest wait, and the clock shows hours and minutes.
  function tick() {
    const now = performance.now();
    for (const tile of tiles.values()) {
      if (tile.waiting > 0 && now - tile.longestAt >= 1000) {
        H.setText(tile.fields.longest_wait_s, H.duration(tile.longest + (now - tile.longestAt) / 1000));
      }
    }
    H.setText(clock, new Date().toLocaleTimeString(H.page.lang === "ru" ? "ru-RU" : "en-GB", { hour: "2-digit", minute: "2-digit" }));
  }

  // ------------------------------------------------------------------ sound
  let audio = null;

  function alarm() {
    state.beeps += 1;
    if (!audio || audio.state !== "running") return;
    const t0 = audio.currentTime;
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, t0 + i * 0.35);
      gain.gain.setValueAtTime(0, t0 + i * 0.35 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + i * 0.35);
      osc.stop(t0 + i * 0.35 + 0.25); // a stopped oscillator is disconnected and collected
    }
  }

  soundButton.addEventListener("click", async function () {
    try {
      audio = audio || new AudioContext();
      await audio.resume();
      soundButton.hidden = true;
      H.flash(H.t("wallboard.sound_on"), "info");
    } catch (e) {
      H.flash(H.t("wallboard.sound_failed"), "error");
    }
  });

  document.getElementById("wb-fullscreen").addEventListener("click", function () {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(function () {});
  });

  // ------------------------------------------------------------------ data
  let stream = null;
  let loading = null;

  async function load() {
    const answer = await H.api("GET", "/api/v1/queues/status");
    const seen = new Set();
    for (const item of answer.items) {
      render(item);
      seen.add(item.queue);
    }
    for (const [name, tile] of tiles) {
      if (!seen.has(name)) {
        tile.root.remove();
        tiles.delete(name);
      }
    }
    if (tiles.size === 0) {
      empty.textContent = H.t("wallboard.no_queues");
      empty.hidden = false;
    }
    return answer.position;
  }

  // load until it works (a wallboard has nobody to press reload), then follow the stream
  function resync() {
    if (loading) return loading;
    loading = (async function () {
      for (;;) {
        try {
          const position = await load();
          H.clearFlash();
          return position;
        } catch (err) {
          H.showError(err);
          await new Promise(function (resolve) { setTimeout(resolve, RETRY_MS); });
        }
      }
    })().finally(function () {
      loading = null;
    });
    return loading;
  }

  function onEvent(m) {
    if (m.event !== "queue.stats") return;
    const receivedAt = performance.timeOrigin + performance.now();
    const tile = render(m.data || {});
    if (!tile) return;
    const queue = tile.root.dataset.queue;
    const mark = { position: m.position, eventTs: m.ts ? Date.parse(m.ts) : null, receivedAt: receivedAt,
      renderedAt: performance.timeOrigin + performance.now(), paintedAt: null };
    lastEventAt[queue] = mark;
    tile.root.dataset.position = String(m.position);
    requestAnimationFrame(function () {
      mark.paintedAt = performance.timeOrigin + performance.now();
    });
  }

  async function start() {
    const position = await resync();
    stream = H.stream(["queue.stats"], {
      since: position,
      onEvent: onEvent,
      onReset: async function () {
        state.resyncs += 1;
        box.dataset.resyncs = String(state.resyncs);
        const p = await resync();
        stream.setPosition(p);
      },
      onStatus: function (s) {
        H.setText(streamState, H.t("stream." + s));
        streamState.dataset.state = s;
      },
    });
    state.stream = stream;
  }

  setInterval(tick, 1000);
  // the session slides only when used: touch it now and then so an unattended wallboard stays signed in
  setInterval(function () {
    H.api("GET", "/api/v1/auth/me").catch(function () {});
  }, KEEPALIVE_MS);
  tick();
  start();
})();
