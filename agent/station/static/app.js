// bedside central station: ward overview, bed view, history. No external libraries.
"use strict";
const $ = (s) => document.querySelector(s);
const beds = new Map();            // key -> bed JSON (as sent by the station)
const rxAt = new Map();            // key -> performance.now() at receipt (ages count up locally)
let me = null, ws = null, route = null, liveEcg = [], liveFs = 130, audioPausedUntil = 0;
const PRIO_ORDER = ["high", "medium", "low"];
const AUDIO_PAUSE_MS = 120000;     // IEC 60601-1-8: audio paused for a bounded time (2 min)

function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function fmt(v, d = 0) { return v === null || v === undefined ? "--" : Number(v).toFixed(d); }
function ageText(b) {
  if (b.vitals_age_s === null || b.vitals_age_s === undefined) return "no data";
  const a = b.vitals_age_s + (performance.now() - (rxAt.get(b.key) || performance.now())) / 1000;
  return a < 2 ? "now" : `${a.toFixed(0)} s ago`;
}
function localTime(iso) { return new Date(iso).toLocaleTimeString(); }

function tileHtml(b) {
  const top = b.alarms[0];
  const n = b.news2;
  const breakdown = n ? n.parameters.filter((p) => p.score !== null).map((p) => `${p.param.replace("_", " ")} ${p.score}`).join(", ") : "";
  const status = b.status === "offline" ? "offline" : b.sensor_disconnected ? "sensor off" : b.status;
  return `<h4><span>${esc(b.key)}</span><span class="status-${esc(b.status)}">${esc(status)}</span></h4>
  <div class="vals">
    <span>HR <span class="big hr">${fmt(b.hr_bpm)}</span> bpm</span>
    <span>SpO2 <span class="big spo2">${fmt(b.spo2_pct)}</span> %</span>
    <span>Resp <span class="resp">${fmt(b.respiration_rate_per_min)}</span> /min</span>
    <span>Temp <span class="temp">${fmt(b.temperature_c, 1)}</span> °C</span>
    <span>Rhythm <span class="rhythm">${esc(b.rhythm ?? "--")}</span></span>
    <span>NEWS2 <span class="big news2" data-total="${n ? n.total : ""}">${n && n.total !== null ? n.total : "--"}</span></span>
  </div>
  <div class="news2-breakdown">${esc(breakdown)}</div>
  <div class="age">vitals ${ageText(b)}</div>
  ${top ? `<div class="alarm-line">${esc(top.priority.toUpperCase())}: ${esc(top.message)}${b.alarms.length > 1 ? ` (+${b.alarms.length - 1})` : ""}</div>` : ""}`;
}

function renderWard() {
  const list = [...beds.values()].sort((a, b) => a.rank - b.rank || a.key.localeCompare(b.key));
  const root = $("#tiles");
  root.innerHTML = "";
  for (const b of list) {
    const el = document.createElement("div");
    el.className = "tile" + (b.top_priority ? ` prio-${b.top_priority}` : "") + (b.top_priority === "high" ? " flash" : "");
    el.dataset.bed = b.key;
    el.dataset.priority = b.top_priority || "none";
    el.innerHTML = tileHtml(b);
    el.onclick = () => go(`/bed/${b.key}`);
    root.appendChild(el);
  }
}

function renderBed() {
  const key = route.key, b = beds.get(key);
  $("#bed-title").textContent = key;
  if (!b) return;
  const el = $("#bed-vitals");
  el.className = "tile" + (b.top_priority ? ` prio-${b.top_priority}` : "");
  el.dataset.bed = b.key;
  el.innerHTML = tileHtml(b);
  const ul = $("#bed-alarms");
  const openId = ul.dataset.open;
  ul.innerHTML = "";
  for (const a of b.alarms) {
    const li = document.createElement("li");
    li.className = `alarm prio-${a.priority}`;
    li.dataset.alarmId = a.alarm_id;
    li.dataset.condition = a.condition;
    const state = a.ack_state === "confirmed" ? `acknowledged${a.ack_by ? " by " + a.ack_by : ""} (confirmed by the monitor)`
      : a.ack_state === "pending" ? `ack pending${a.ack_by ? " (" + a.ack_by + ")" : ""}` : "";
    li.innerHTML = `<b>${esc(a.priority)}</b> ${esc(a.condition)}: ${esc(a.message)} since ${localTime(a.onset_utc)}
      ${a.station ? "" : `<button class="evidence-btn">Evidence</button>`}
      ${a.station || a.ack_state !== "none" || !me || me.role === "viewer" ? "" : `<button class="ack-btn">Acknowledge</button>`}
      <span class="ack-state" data-state="${a.ack_state}">${esc(state)}</span>`;
    const ev = li.querySelector(".evidence-btn");
    if (ev) ev.onclick = () => showEvidence(a.alarm_id);
    const ack = li.querySelector(".ack-btn");
    if (ack) ack.onclick = () => acknowledge(b, a);
    ul.appendChild(li);
  }
  if (!b.alarms.length) ul.innerHTML = "<li>none</li>";
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login"; throw new Error("login"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

async function acknowledge(b, a) {
  try {
    await api("/api/ack", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({unit: b.unit, bed: b.bed, alarm_id: a.alarm_id})});
  } catch (e) { alert("acknowledge failed: " + e.message); }
}

async function showEvidence(alarmId) {
  const data = await api(`/api/alarm/${alarmId}`);
  const sec = $("#evidence");
  sec.hidden = false;
  sec.dataset.alarmId = alarmId;
  const first = data.events[0];
  $("#evidence-title").textContent = `Evidence: ${first ? first.condition : alarmId}`;
  const ev = data.evidence || {};
  drawStrip($("#strip"), ev.strip, ev.beats || []);
  const ol = $("#beats");
  ol.innerHTML = "";
  for (const bt of ev.beats || []) {
    const li = document.createElement("li");
    li.className = "beat";
    li.dataset.class = bt.aami_class || "?";
    li.textContent = `${bt.aami_class || "?"} at ${bt.t_s.toFixed(2)} s` + (bt.rr_ms ? `, RR ${bt.rr_ms.toFixed(0)} ms` : "");
    ol.appendChild(li);
  }
}

function drawTrace(ctx, w, h, samples, scale, x0 = 0) {
  ctx.strokeStyle = "#3f3"; ctx.lineWidth = 1.2; ctx.beginPath();
  let pen = false;  // null: a sample the sensor flagged invalid; the trace breaks there
  samples.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = x0 + i * scale; const y = h / 2 - v * h / 4000;
    pen ? ctx.lineTo(x, y) : ctx.moveTo(x, y); pen = true;
  });
  ctx.stroke();
}

function drawStrip(canvas, strip, beatList) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!strip) { ctx.fillStyle = "#999"; ctx.fillText("no strip (kept for the retention period only)", 10, 20); return; }
  const pxPerS = w / (strip.samples_uv.length / strip.fs_hz);
  ctx.strokeStyle = "#311"; ctx.lineWidth = 1;
  for (let s = 0; s * pxPerS < w; s += 0.2) { ctx.beginPath(); ctx.moveTo(s * pxPerS, 0); ctx.lineTo(s * pxPerS, h); ctx.stroke(); }
  drawTrace(ctx, w, h, strip.samples_uv, pxPerS / strip.fs_hz);
  ctx.font = "13px sans-serif";
  let prev = null;
  for (const bt of beatList) {
    const x = (bt.t_s - strip.t0_s) * pxPerS;
    if (x < 0 || x > w) continue;
    ctx.fillStyle = bt.aami_class === "V" ? "#f44" : "#ff0";
    ctx.fillText(bt.aami_class || "?", x - 4, 14);
    if (bt.rr_ms && prev !== null) { ctx.fillStyle = "#aaa"; ctx.fillText(`${bt.rr_ms.toFixed(0)}`, (prev + x) / 2 - 12, h - 6); }
    prev = x;
  }
}

function drawLive() {
  const c = $("#live-ecg"); if (!c || route.view !== "bed") return;
  const ctx = c.getContext("2d"); ctx.clearRect(0, 0, c.width, c.height);
  const n = Math.round(liveFs * 6);
  const s = liveEcg.slice(-n);
  drawTrace(ctx, c.width, c.height, s, c.width / n);
}

async function loadTrend(hours) {
  if (route.view !== "bed") return;
  const [unit, bed] = route.key.split("/");
  const data = await api(`/api/trends/${unit}/${bed}?hours=${hours}`);
  const c = $("#trend"), ctx = c.getContext("2d"), w = c.width, h = c.height;
  ctx.clearRect(0, 0, w, h);
  c.dataset.points = data.points.length;
  const t1 = Date.now(), t0 = t1 - hours * 3600e3;
  const series = [["hr_bpm", "#3f3", 0, 200], ["spo2_pct", "#4cf", 70, 100], ["news2_total", "#fc3", 0, 20]];
  ctx.font = "12px sans-serif";
  series.forEach(([k, col, lo, hi], i) => {
    ctx.strokeStyle = col; ctx.fillStyle = col; ctx.beginPath(); let started = false;
    for (const p of data.points) {
      if (p[k] === null) continue;
      const x = (Date.parse(p.ts_utc) - t0) / (t1 - t0) * w, y = h - (p[k] - lo) / (hi - lo) * h;
      started ? ctx.lineTo(x, y) : ctx.moveTo(x, y); started = true;
    }
    ctx.stroke(); ctx.fillText(`${k} (${lo}-${hi})`, 8, 14 + 14 * i);
  });
}

function historyParams() {
  const f = new FormData($("#history-form")), p = new URLSearchParams();
  for (const [k, v] of f) if (v) p.set(k, k === "since" ? new Date(v).toISOString() : v);
  return p;
}
async function loadHistory() {
  const p = historyParams();
  $("#csv-link").href = "/api/history.csv?" + p;
  const data = await api("/api/history?" + p);
  const tb = $("#history-table tbody");
  tb.innerHTML = "";
  for (const e of data.events) {
    const tr = document.createElement("tr");
    tr.className = `prio-${e.priority}`;
    tr.dataset.alarmId = e.alarm_id;
    tr.dataset.lifecycle = e.lifecycle;
    tr.innerHTML = `<td>${new Date(e.ts_utc).toLocaleString()}</td><td>${esc(e.unit)}/${esc(e.bed)}</td><td>${esc(e.lifecycle)}</td>
      <td>${esc(e.condition)}</td><td>${esc(e.priority)}</td><td>${fmt(e.hr_bpm)}</td><td>${esc(e.acknowledged_by || "")}</td><td>${esc(e.message)}</td>`;
    tb.appendChild(tr);
  }
}

// audible signal: a WebAudio tone pattern while a high-priority alarm is active and audio is not paused
let audioCtx = null;
function beep() {
  try {
    audioCtx = audioCtx || new AudioContext();
    const o = audioCtx.createOscillator(), g = audioCtx.createGain();
    o.frequency.value = 880; g.gain.value = 0.05; o.connect(g); g.connect(audioCtx.destination);
    o.start(); o.stop(audioCtx.currentTime + 0.15);
  } catch (e) { /* no audio device */ }
}
setInterval(() => {
  const now = Date.now();
  const paused = now < audioPausedUntil;
  $("#audio-pause").textContent = paused ? `Audio paused ${Math.ceil((audioPausedUntil - now) / 1000)} s` : "Pause audio 2 min";
  $("#clock").textContent = new Date().toLocaleTimeString();
  if (!paused && [...beds.values()].some((b) => b.top_priority === "high")) beep();
  if (route && route.view === "ward") document.querySelectorAll(".tile .age").forEach((el) => {
    const b = beds.get(el.parentElement.dataset.bed); if (b) el.textContent = "vitals " + ageText(b);
  });
}, 1000);
$("#audio-pause").onclick = () => { audioPausedUntil = Date.now() + AUDIO_PAUSE_MS; };

function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { $("#conn").textContent = "live"; $("#conn").className = "conn-up"; if (route.view === "bed") ws.send(JSON.stringify({type: "watch", key: route.key})); };
  ws.onclose = () => { $("#conn").textContent = "disconnected"; $("#conn").className = "conn-down"; setTimeout(connect, 1000); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "ward") { beds.clear(); for (const b of msg.beds) { beds.set(b.key, b); rxAt.set(b.key, performance.now()); } rerender(); }
    else if (msg.type === "bed") { beds.set(msg.bed.key, msg.bed); rxAt.set(msg.bed.key, performance.now()); rerender(msg.bed.key); }
    else if (msg.type === "ecg" && route.view === "bed" && msg.key === route.key) {
      liveFs = msg.fs_hz; liveEcg.push(...msg.samples_uv); if (liveEcg.length > 4000) liveEcg = liveEcg.slice(-2000);
      $("#live-ecg").dataset.samples = (Number($("#live-ecg").dataset.samples || 0) + msg.samples_uv.length);
      drawLive();
    }
  };
}
function rerender(key) {
  if (route.view === "ward") renderWard();
  else if (route.view === "bed" && (!key || key === route.key)) renderBed();
}

function parseRoute() {
  const p = location.pathname;
  const m = p.match(/^\/bed\/([^/]+)\/([^/]+)$/);
  if (m) return {view: "bed", key: `${m[1]}/${m[2]}`};
  if (p === "/history") return {view: "history"};
  return {view: "ward"};
}
function go(path) { history.pushState({}, "", path); show(); }
window.onpopstate = show;
function show() {
  const prev = route;
  route = parseRoute();
  for (const v of ["ward", "bed", "history"]) $(`#${v}-view`).hidden = route.view !== v;
  if (ws && ws.readyState === 1) {
    if (route.view === "bed") ws.send(JSON.stringify({type: "watch", key: route.key}));
    else if (prev && prev.view === "bed") ws.send(JSON.stringify({type: "unwatch"}));
  }
  if (route.view === "bed") { liveEcg = []; $("#evidence").hidden = true; loadTrend(1); }
  if (route.view === "history") loadHistory();
  rerender();
}
document.querySelectorAll(".trend-h").forEach((b) => b.onclick = () => loadTrend(Number(b.dataset.h)));
$("#history-form").onsubmit = (e) => { e.preventDefault(); loadHistory(); };
$("#obs-form").onsubmit = async (e) => {
  e.preventDefault();
  const [unit, bed] = route.key.split("/");
  const body = {unit, bed};
  for (const [k, v] of new FormData(e.target)) {
    if (v === "") continue;
    body[k] = k === "consciousness" ? v : k === "supplemental_o2" ? v === "true" : Number(v);
  }
  try { const r = await api("/api/observations", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    $("#obs-result").textContent = "sent: " + Object.keys(r.sent).join(", "); }
  catch (err) { $("#obs-result").textContent = "not sent: " + err.message; }
};

(async () => {
  me = await api("/api/me");
  $("#user").textContent = `${me.username} (${me.role})`;
  if (me.role === "viewer") $("#obs-form").hidden = true;
  show();
  connect();
})();
