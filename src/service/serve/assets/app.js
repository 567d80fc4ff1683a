// recalcd serve's page: hand-written canvas code, no libraries, no network but this
// server's API (docs/serve.md). The view lives in the address's fragment
// (#channel=…&id=…&from=…&to=…&where=…), so a link reproduces it and Back undoes a zoom.
// What was drawn is exposed as window.recalcdState for tests and programs.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const M = { left: 78, right: 18, top: 16, bottom: 44 };
  const plotWidth = () => canvas.width - M.left - M.right;
  const plotHeight = () => canvas.height - M.top - M.bottom;

  let channels = [];
  let view = null; // {channel, id, from, to, where}: strings, as in the address
  let seq = 0; // the latest load; answers to older ones are dropped
  let shown = null; // {frame, phase, fromUs, toUs, unit}
  let matches = [];

  const state = (window.recalcdState = { phase: "loading", seq: 0 });

  // ---- times: microseconds since 1970 (UTC), written as the API takes them ----
  function parseUs(text, endOfDay) {
    const s = (text || "").trim();
    let m = /^(\d{4}-\d{2}-\d{2})$/.exec(s);
    if (m) {
      const ms = Date.parse(m[1] + "T00:00:00Z");
      return isNaN(ms) ? null : (ms + (endOfDay ? 86400000 : 0)) * 1000;
    }
    m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(s);
    if (!m) return null;
    const ms = Date.parse(m[1] + "Z");
    if (isNaN(ms)) return null;
    return ms * 1000 + (m[2] ? parseInt((m[2] + "00000").slice(0, 6), 10) : 0);
  }
  function stamp(us) {
    const sec = Math.floor(us / 1e6);
    const frac = us - sec * 1e6;
    const base = new Date(sec * 1000).toISOString().slice(0, 19);
    return frac ? base + "." + String(frac).padStart(6, "0") : base;
  }

  // ---- the API ----
  function token() {
    return sessionStorage.getItem("recalcd-token") || "";
  }
  async function api(path, params) {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const r = await fetch(path + "?" + new URLSearchParams(params), { headers });
    const body = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
    if (r.status === 401) $("tokenbox").style.display = "flex";
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // ---- the view and the address ----
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    const v = {};
    for (const k of ["channel", "id", "from", "to", "where"]) v[k] = p.get(k) || "";
    return v;
  }
  function hashOf(v) {
    const p = new URLSearchParams();
    for (const k of ["channel", "id", "from", "to", "where"]) if (v[k]) p.set(k, v[k]);
    return "#" + p.toString();
  }
  function go(v) {
    const h = hashOf(v);
    if (h === location.hash) load(v);
    else location.hash = h; // the hashchange handler loads it
  }
  function channelInfo(name) {
    return channels.find((c) => c.channel.toLowerCase() === (name || "").toLowerCase());
  }
  function fillDevices(info, selected) {
    const sel = $("device");
    sel.innerHTML = "";
    const ids = info ? info.devices.slice() : [];
    if (selected && !ids.includes(Number(selected))) ids.unshift(Number(selected));
    for (const id of ids) sel.add(new Option(String(id), String(id)));
    if (selected) sel.value = String(selected);
  }
  function withDefaults(v) {
    const info = channelInfo(v.channel) || channels[0];
    if (!info) return v;
    const out = Object.assign({}, v);
    if (!out.channel) out.channel = info.channel;
    if (!out.id && info.devices.length) out.id = String(info.devices[0]);
    if (!out.from || !out.to) {
      if (info.range) [out.from, out.to] = info.range;
      else {
        const day = Math.floor(Date.now() / 86400000) * 86400000;
        out.from = stamp((day - 86400000) * 1000);
        out.to = stamp((day + 86400000) * 1000);
      }
    }
    return out;
  }
  function showControls(v) {
    $("channel").value = channelInfo(v.channel) ? channelInfo(v.channel).channel : v.channel;
    fillDevices(channelInfo(v.channel), v.id);
    $("from").value = v.from;
    $("to").value = v.to;
    $("where").value = v.where;
  }
  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  // ---- loading: the coarsest frame at once, then the final one in place ----
  async function load(v) {
    view = v;
    showControls(v);
    const my = ++seq;
    matches = [];
    Object.assign(state, { phase: "loading", seq: my, error: null, matches: [] });
    const fromUs = parseUs(v.from, false);
    const toUs = parseUs(v.to, true);
    if (!v.channel || !v.id || fromUs === null || toUs === null) {
      fail(my, "pick a channel, a device and a range (times as YYYY-MM-DDTHH:MM:SS, UTC)");
      return;
    }
    const params = { channel: v.channel, id: v.id, from: v.from, to: v.to, width: plotWidth() };
    if (v.where) {
      api("api/search", { channel: v.channel, id: v.id, from: v.from, to: v.to, where: v.where })
        .then((found) => {
          if (my !== seq) return;
          matches = found.matches.map((m) => [parseUs(m.from), parseUs(m.to)]);
          state.matches = found.matches;
          state.search = found.stats;
          if (shown) draw(shown);
        })
        .catch((e) => my === seq && fail(my, "where: " + e.message, true));
    }
    try {
      const coarse = await api("api/plot", Object.assign({ step: "coarse" }, params));
      if (my !== seq) return;
      show(my, coarse, "coarse", fromUs, toUs);
      const fine = await api("api/plot", Object.assign({ step: "final" }, params));
      if (my !== seq) return;
      show(my, fine, "final", fromUs, toUs);
    } catch (e) {
      if (my === seq) fail(my, e.message);
    }
  }
  function show(my, answer, phase, fromUs, toUs) {
    const frame = answer.frames[answer.frames.length - 1];
    if (!frame) {
      fail(my, "the server answered no frame");
      return;
    }
    shown = { frame, phase, fromUs, toUs, unit: answer.unit };
    const drawn = draw(shown);
    // Every frame drawn, in order: what a test checks the progression with.
    state.history = (state.history || []).concat([
      { seq: my, phase, step: frame.step, level: frame.level, exact: frame.exact, drawn },
    ]);
    Object.assign(state, {
      phase,
      seq: my,
      channel: view.channel,
      id: Number(view.id),
      from: view.from,
      to: view.to,
      width: frame.columns.length,
      step: frame.step,
      level: frame.level,
      exact: frame.exact,
      rows_read: frame.rows_read,
      buckets_read: frame.buckets_read,
      columns: frame.columns,
      drawn,
      note: answer.note || null,
    });
    const what = frame.level ? "level " + length(frame.level) : "raw rows";
    status(
      (phase === "final" ? "final frame" : "first frame") + " (" + what + "): " +
        drawn + " of " + frame.columns.length + " pixel columns, " +
        frame.rows_read + " rows and " + frame.buckets_read + " buckets read" +
        (answer.note ? " — " + answer.note : "")
    );
  }
  function fail(my, message) {
    if (my !== seq) return;
    Object.assign(state, { phase: "error", error: message });
    status(message, true);
  }

  // ---- drawing ----
  function draw(s) {
    const { frame, fromUs, toUs, unit } = s;
    const W = plotWidth();
    const H = plotHeight();
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of frame.columns) {
      if (!c) continue;
      lo = Math.min(lo, c.min);
      hi = Math.max(hi, c.max);
    }
    const empty = !(lo <= hi);
    if (empty) {
      lo = 0;
      hi = 1;
    } else if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const y = (v) => M.top + ((hi - v) / (hi - lo)) * H;
    const xOf = (t) => M.left + ((t - fromUs) / (toUs - fromUs)) * W;
    // The matches of the condition, shaded.
    ctx.fillStyle = "rgba(255, 150, 0, 0.28)";
    for (const [a, b] of matches) {
      const x0 = Math.max(M.left, xOf(a));
      const x1 = Math.min(M.left + W, xOf(b));
      if (x1 >= M.left && x0 <= M.left + W) ctx.fillRect(x0, M.top, Math.max(1, x1 - x0), H);
    }
    // Axes and labels.
    ctx.strokeStyle = "#888";
    ctx.lineWidth = 1;
    ctx.strokeRect(M.left - 0.5, M.top - 0.5, W + 1, H + 1);
    ctx.fillStyle = "#333";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      ctx.fillText(empty ? "" : fmt(v), M.left - 6, y(v));
    }
    if (unit) {
      ctx.save();
      ctx.translate(14, M.top + H / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(unit, 0, 0);
      ctx.restore();
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let k = 0; k <= 4; k++) {
      const t = fromUs + ((toUs - fromUs) * k) / 4;
      ctx.textAlign = k === 0 ? "left" : k === 4 ? "right" : "center";
      ctx.fillText(stamp(Math.round(t / 1e6) * 1e6).replace("T", " "), M.left + (W * k) / 4, M.top + H + 6);
    }
    ctx.textAlign = "center";
    ctx.fillText("UTC", M.left + W / 2, M.top + H + 24);
    if (empty) {
      ctx.textBaseline = "middle";
      ctx.fillText("no data in this range", M.left + W / 2, M.top + H / 2);
      return 0;
    }
    // The line: per pixel column its min–max bar, joined first to last across columns.
    ctx.strokeStyle = "#1f5fbf";
    ctx.beginPath();
    let drawn = 0;
    let prev = null;
    frame.columns.forEach((c, i) => {
      if (!c) return;
      const x = M.left + i + 0.5;
      if (prev && prev.last.v !== null && c.first.v !== null) {
        ctx.moveTo(prev.x, y(prev.last.v));
        ctx.lineTo(x, y(c.first.v));
      }
      ctx.moveTo(x, y(c.max));
      ctx.lineTo(x, y(c.min) + (c.max === c.min ? 1 : 0));
      prev = { x, last: c.last };
      drawn++;
    });
    ctx.stroke();
    return drawn;
  }
  // A level's length (µs) as recalcd writes it: 1d, 1h, 10m, 1s, 500ms.
  function length(us) {
    for (const [unit, n] of [["d", 864e8], ["h", 36e8], ["m", 6e7], ["s", 1e6], ["ms", 1e3]]) {
      if (us >= n && us % n === 0) return us / n + unit;
    }
    return us + "us";
  }
  function fmt(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }

  // ---- drag to zoom ----
  const sel = $("sel");
  let dragFrom = null;
  const plotX = (e) => {
    const r = canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) * canvas.width) / r.width;
    return Math.min(M.left + plotWidth(), Math.max(M.left, x));
  };
  canvas.addEventListener("mousedown", (e) => {
    if (!shown) return;
    dragFrom = plotX(e);
    e.preventDefault();
  });
  window.addEventListener("mousemove", (e) => {
    if (dragFrom === null) return;
    const x = plotX(e);
    const r = canvas.getBoundingClientRect();
    const k = r.width / canvas.width;
    sel.style.display = "block";
    sel.style.left = Math.min(x, dragFrom) * k + "px";
    sel.style.width = Math.abs(x - dragFrom) * k + "px";
  });
  window.addEventListener("mouseup", (e) => {
    if (dragFrom === null) return;
    const x = plotX(e);
    const a = Math.min(x, dragFrom) - M.left;
    const b = Math.max(x, dragFrom) - M.left;
    dragFrom = null;
    sel.style.display = "none";
    if (b - a < 3 || !shown) return;
    const span = shown.toUs - shown.fromUs;
    const from = Math.floor(shown.fromUs + (span * a) / plotWidth());
    const to = Math.ceil(shown.fromUs + (span * b) / plotWidth());
    if (to <= from) return;
    go(Object.assign({}, view, { from: stamp(from), to: stamp(to) }));
  });
  $("out").addEventListener("click", () => {
    if (!shown) return;
    const span = shown.toUs - shown.fromUs;
    go(Object.assign({}, view, { from: stamp(shown.fromUs - span), to: stamp(shown.toUs + span) }));
  });

  // ---- the controls ----
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    go({
      channel: $("channel").value,
      id: $("device").value,
      from: $("from").value.trim(),
      to: $("to").value.trim(),
      where: $("where").value.trim(),
    });
  });
  $("channel").addEventListener("change", () => {
    const info = channelInfo($("channel").value);
    fillDevices(info, info && info.devices.length ? info.devices[0] : "");
  });
  $("tokenbox").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("recalcd-token", $("token").value.trim());
    $("tokenbox").style.display = "none";
    start();
  });
  window.addEventListener("hashchange", () => load(withDefaults(readHash())));

  async function start() {
    try {
      channels = (await api("api/channels", {})).channels;
    } catch (e) {
      fail(seq, e.message);
      return;
    }
    const sel = $("channel");
    sel.innerHTML = "";
    for (const c of channels) sel.add(new Option(c.channel + (c.unit ? " (" + c.unit + ")" : ""), c.channel));
    const v = withDefaults(readHash());
    if (hashOf(v) !== location.hash) history.replaceState(null, "", hashOf(v));
    load(v);
  }
  start();
})();
