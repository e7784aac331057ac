// fieldplan dispatch board. Plain JavaScript (no build step), talking to the public /v1 API only.
// Safe by construction: every value from the data is put on the page with textContent (or as a
// DOM node handed to Leaflet), never parsed as HTML.
"use strict";

const KEY = "fieldplan.key";
const SNAP_MINUTES = 15;
const NUMBERED_STOPS = 250;
const KINDS = ["installation", "maintenance", "repair", "inspection", "complaint", "training", "follow_up"];
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];

const state = {
  day: null, view: "day", version: "newest", board: null, config: {}, selectedJob: null,
  markers: {}, map: null, layers: null, evalSeq: 0, lastProbe: "", polling: null, t0: 0, t1: 0,
};

// --- small helpers ------------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function hhmm(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: state.config.timezone });
}

function minutesOfDay(iso) {
  // Minutes since local midnight of the service's zone, read from the ISO string's own offset.
  const m = /T(\d\d):(\d\d)/.exec(iso);
  return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
}

function offsetOf(iso) {
  const m = /([+-]\d\d:\d\d|Z)$/.exec(iso);
  return m ? (m[1] === "Z" ? "+00:00" : m[1]) : "+00:00";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!res.ok) {
    const detail = data && data.detail;
    const message = Array.isArray(detail) ? detail.map((d) => (d.loc || []).join(".") + ": " + d.msg).join("; ") : String(detail || res.status);
    const error = new Error(message);
    error.status = res.status;
    throw error;
  }
  return data;
}

function colourOf(techId) {
  const i = state.board ? state.board.technicians.findIndex((t) => t.id === techId) : 0;
  return COLOURS[(i < 0 ? 0 : i) % COLOURS.length];
}

// --- sign-in ------------------------------------------------------------------------------------

async function start() {
  try { state.config = await (await fetch("/board/config.json")).json(); } catch (e) { state.config = {}; }
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    await enter();
  });
  for (const id of ["signout", "tech-signout"]) $(id).addEventListener("click", signOut);
  if (sessionStorage.getItem(KEY)) await enter(); else show("signin");
}

function show(which) {
  for (const id of ["signin", "dispatcher", "technician"]) $(id).hidden = id !== which;
}

function signOut() {
  sessionStorage.removeItem(KEY);
  if (state.polling) clearInterval(state.polling);
  location.reload();
}

async function enter() {
  $("signin-error").textContent = "";
  let me;
  try {
    me = await api("GET", "/v1/me");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    show("signin");
    $("signin-error").textContent = e.status === 401 ? "That key is not valid." : "Sign-in failed: " + e.message;
    return;
  }
  if (me.role === "technician") { show("technician"); await technicianDay(me.technician_id); return; }
  if (me.role !== "dispatcher" && me.role !== "admin") {
    show("signin");
    $("signin-error").textContent = "This key's role (" + me.role + ") has no board.";
    sessionStorage.removeItem(KEY);
    return;
  }
  show("dispatcher");
  setupDispatcher();
  await loadDay();
}

// --- the dispatcher's board ---------------------------------------------------------------------

let wired = false;
function setupDispatcher() {
  if (wired) return;
  wired = true;
  const today = state.config.today || new Date().toLocaleDateString("en-CA", { timeZone: state.config.timezone });
  state.day = today;
  $("day").value = today;
  $("day").addEventListener("change", () => { state.day = $("day").value; loadDay(); });
  $("version").addEventListener("change", () => { state.version = $("version").value; loadDay(); });
  $("view-day").addEventListener("click", () => setView("day"));
  $("view-week").addEventListener("click", () => setView("week"));
  $("replan").addEventListener("click", replan);
  $("publish").addEventListener("click", publish);
  $("evaluate").addEventListener("click", () => evaluateForm(false));
  $("place").addEventListener("click", () => evaluateForm(true));
  $("unpin").addEventListener("click", unpinSelected);
  $("maintenance-toggle").addEventListener("click", toggleMaintenance);
  for (const id of ["filter-priority", "filter-skill", "filter-reason"]) $(id).addEventListener("change", drawWaiting);
  $("place-job").addEventListener("change", () => selectJob($("place-job").value, false));
  state.map = L.map("map", { preferCanvas: false, zoomSnap: 0.25, attributionControl: false });
  if (state.config.tile_url) L.tileLayer(state.config.tile_url, { maxZoom: 19 }).addTo(state.map);
  state.layers = L.layerGroup().addTo(state.map);
}

function setView(view) {
  state.view = view;
  $("view-day").classList.toggle("on", view === "day");
  $("view-week").classList.toggle("on", view === "week");
  $("timeline").hidden = view !== "day";
  $("week").hidden = view !== "week";
  if (view === "week") drawWeek(); else loadDay();
}

async function loadDay() {
  document.body.removeAttribute("data-ready");
  const diff = api("GET", `/v1/days/${state.day}/diff`).catch(() => null); // in parallel with the board
  try {
    state.board = await api("GET", `/v1/days/${state.day}/board?version=${state.version}`);
  } catch (e) {
    $("evaluation").textContent = "Could not load the day: " + e.message;
    return;
  }
  performance.mark("board-fetched");
  const b = state.board;
  $("clock").textContent = "now " + hhmm(b.now);
  $("version-state").textContent = b.plan_version == null ? "no plan yet"
    : `version ${b.plan_version}` + (b.published ? " (published)" : b.proposal ? " (proposal)" : " (not published)");
  $("publish").disabled = b.plan_version == null || b.published;
  // Phases measured by benchmarks/board.py (performance.getEntriesByType("measure")).
  const phase = (name, draw) => { const t = performance.now(); draw(); performance.measure(name, { start: t }); };
  phase("kpis", drawKpis);
  phase("timeline", drawTimeline);
  phase("map", drawMap);
  phase("waiting", drawWaiting);
  phase("form", fillPlaceForm);
  const t = performance.now();
  drawDiff(await diff);
  performance.measure("diff", { start: t });
  if (state.view === "week") await drawWeek();
  document.body.setAttribute("data-ready", "1");
}

function drawKpis() {
  const box = $("kpis");
  box.replaceChildren();
  const k = state.board.kpis;
  if (!k) { box.append(el("span", { text: "No plan for this day: re-optimise to make one." })); return; }
  const util = Object.values(k.utilisation);
  const avg = util.length ? util.reduce((a, b) => a + b, 0) / util.length : 0;
  const items = [
    ["planned", `${k.jobs_planned}/${k.jobs_planned + k.jobs_unassigned}`],
    ...Object.entries(k.planned_by_priority).map(([p, c]) => ["P" + p, `${c.planned}/${c.total}`]),
    ["travel", `${k.travel_km.toFixed(0)} km, ${Math.round(k.travel_minutes)} min`],
    ["overtime", `${Math.round(k.overtime_minutes)} min`],
    ["SLA-late", String(k.sla_late_jobs)],
    ["utilisation", `${Math.round(avg * 100)} %`],
    ["churn", k.churn == null ? "–" : `${Math.round(k.churn * 100)} %`],
  ];
  for (const [name, value] of items) box.append(el("span", { class: "kpi", "data-kpi": name }, el("b", { text: value }), name));
  const legend = el("span", { class: "legend" });
  for (const kind of KINDS) legend.append(el("span", { class: "kind-" + kind, text: kind.replace("_", "-") }));
  box.append(legend);
}

function bounds() {
  let lo = 24 * 60, hi = 0;
  for (const t of state.board.technicians) {
    if (t.shift_start) { lo = Math.min(lo, minutesOfDay(t.shift_start)); hi = Math.max(hi, minutesOfDay(t.shift_end) + t.overtime_limit_minutes); }
  }
  for (const r of state.board.routes) { lo = Math.min(lo, minutesOfDay(r.start)); hi = Math.max(hi, minutesOfDay(r.end)); }
  if (lo >= hi) { lo = 7 * 60; hi = 19 * 60; }
  state.t0 = Math.floor(lo / 60) * 60;
  state.t1 = Math.ceil(hi / 60) * 60;
}

function pct(minutes) { return ((minutes - state.t0) / (state.t1 - state.t0)) * 100 + "%"; }
function width(a, b) { return ((b - a) / (state.t1 - state.t0)) * 100 + "%"; }

function drawTimeline() {
  const box = $("timeline");
  box.replaceChildren();
  bounds();
  const axis = el("div", { class: "axis" }, el("div", { class: "label", text: "technician" }));
  const hours = el("div", { class: "hours" });
  for (let m = state.t0; m < state.t1; m += 60) {
    const h = el("span", { class: "hour", text: String(m / 60).padStart(2, "0") + ":00" });
    h.style.left = pct(m);
    hours.append(h);
  }
  axis.append(hours);
  box.append(axis);
  const routes = Object.fromEntries(state.board.routes.map((r) => [r.technician_id, r]));
  const nowMin = state.board.now.slice(0, 10) === state.day ? minutesOfDay(state.board.now) : null;
  for (const t of state.board.technicians) {
    const lane = el("div", { class: "lane", "data-tech": t.id });
    if (t.shift_start) {
      const s = minutesOfDay(t.shift_start), e = minutesOfDay(t.shift_end);
      const shift = el("div", { class: "shift" });
      shift.style.left = pct(s); shift.style.width = width(s, e);
      lane.append(shift);
      if (t.overtime_limit_minutes) {
        const o = el("div", { class: "overtime-zone", title: "overtime allowed" });
        o.style.left = pct(e); o.style.width = width(e, e + t.overtime_limit_minutes);
        lane.append(o);
      }
    }
    const r = routes[t.id];
    if (r) drawRoute(lane, t, r);
    if (nowMin !== null) { const n = el("div", { class: "now" }); n.style.left = pct(nowMin); lane.append(n); }
    wireDrop(lane, t);
    const label = el("div", { class: "label", text: `${t.name} (${t.id})`, title: skillsText(t.skills) });
    label.style.borderLeft = "5px solid " + colourOf(t.id);
    if (!t.shift_start) label.append(" · off");
    const row = el("div", { class: "row", "data-tech": t.id }, label, lane);
    box.append(row);
  }
}

function skillsText(skills) {
  return Object.entries(skills).map(([k, v]) => `${k} ${v}`).join(", ") || "no skills";
}

function drawRoute(lane, tech, r) {
  let prev = minutesOfDay(r.start);
  const shiftEnd = tech.shift_end ? minutesOfDay(tech.shift_end) : 24 * 60;
  r.visits.forEach((v, i) => {
    const arrive = minutesOfDay(v.arrival);
    if (arrive > prev) {
      const tr = el("div", { class: "travel", title: `travel ${arrive - prev} min` });
      tr.style.left = pct(prev); tr.style.width = width(prev, arrive);
      lane.append(tr);
    }
    const job = state.board.jobs[v.job_id] || {};
    const s = minutesOfDay(v.start), e = minutesOfDay(v.end);
    const cls = ["visit", "kind-" + job.kind, "p" + job.priority];
    if (v.late) cls.push("late");
    if (e > shiftEnd) cls.push("overtime");
    if (job.pinned) cls.push("pinned");
    if (job.visit_status) cls.push("status-" + job.visit_status);
    if (v.role) cls.push("crew", "crew-" + v.role);
    if (v.part) cls.push("part");
    const badge = (v.role ? (v.role === "lead" ? " ◆" : " ◇") : "") + (v.part ? ` day ${v.part}` : "");
    const bar = el("div", { class: cls.join(" "), draggable: !v.role && !v.part, "data-job": v.job_id, "data-seq": String(i + 1), text: `${i + 1} ${v.job_id}${badge}` });
    bar.style.left = pct(s); bar.style.width = width(s, e);
    bar.addEventListener("mouseenter", (ev) => tip(ev, visitText(v, job, tech)));
    bar.addEventListener("mousemove", moveTip);
    bar.addEventListener("mouseleave", hideTip);
    bar.addEventListener("click", () => selectJob(v.job_id, true));
    bar.addEventListener("dragstart", (ev) => dragStart(ev, v.job_id));
    bar.addEventListener("dragend", dragEnd);
    lane.append(bar);
    prev = e;
  });
  const end = minutesOfDay(r.end);
  if (end > prev) {
    const tr = el("div", { class: "travel", title: "back home" });
    tr.style.left = pct(prev); tr.style.width = width(prev, end);
    lane.append(tr);
  }
  if (r.break) {
    const a = minutesOfDay(r.break.start), b = minutesOfDay(r.break.end);
    const lunch = el("div", { class: "lunch", title: `lunch ${hhmm(r.break.start)}-${hhmm(r.break.end)}` });
    lunch.style.left = pct(a); lunch.style.width = width(a, b);
    lane.append(lunch);
  }
}

function visitText(v, job, tech) {
  const lines = [
    `${v.job_id} · ${job.kind} · priority ${job.priority}${job.warranty ? " · warranty" : ""}${job.emergency ? " · EMERGENCY" : ""}`,
    `${tech ? tech.name + " · " : ""}arrive ${hhmm(v.arrival)}, ${hhmm(v.start)}-${hhmm(v.end)}`,
  ];
  if (job.visit_status) lines.push("reported: " + job.visit_status);
  if (v.role) lines.push(`crew of ${job.crew_size}: ${v.role === "lead" ? "lead" : "helper"}, all start together at ${hhmm(v.start)}`);
  if (v.part) lines.push(`day ${v.part} of a job over several days (${job.duration_minutes} min in all)`);
  if (job.after) lines.push(`follows ${job.after.job_id} by ${job.after.min_days}${job.after.max_days != null ? "-" + job.after.max_days : "+"} days`);
  if (job.same_technician_as) lines.push(`${job.same_technician_as.hard ? "must go" : "goes preferably"} to the technician of ${job.same_technician_as.job_id}`);
  if (job.address) lines.push(job.address);
  if (job.due) lines.push(`due ${job.due.slice(0, 16).replace("T", " ")}${v.late ? " (LATE)" : ""}`);
  if (job.promise) lines.push(`promised ${hhmm(job.promise.start)}-${hhmm(job.promise.end)}`);
  if (job.pinned) lines.push(`pinned to ${job.pinned.technician_id}${job.pinned.start ? " at " + hhmm(job.pinned.start) : ""}`);
  if (Object.keys(job.skills || {}).length) lines.push("needs " + skillsText(job.skills));
  if (job.notes) lines.push("note: " + job.notes);
  return lines.join("\n");
}

function tip(ev, text) { const t = $("tip"); t.textContent = text; t.hidden = false; moveTip(ev); }
function moveTip(ev) { const t = $("tip"); t.style.left = ev.clientX + 14 + "px"; t.style.top = ev.clientY + 12 + "px"; }
function hideTip() { $("tip").hidden = true; }

// --- the map ------------------------------------------------------------------------------------

function numberIcon(n, colour) {
  const div = el("div", { class: "stop-number", text: String(n) });
  div.style.borderColor = colour;
  return L.divIcon({ html: div, className: "", iconSize: [20, 20] });
}

function drawMap() {
  const map = state.map, b = state.board;
  state.layers.clearLayers();
  state.markers = {};
  const points = [];
  const byTech = Object.fromEntries(b.technicians.map((t) => [t.id, t]));
  // Numbered stops as DOM markers while they stay readable; at fleet size, canvas dots (the number
  // is in the tooltip) keep the map drawn in a few hundred milliseconds.
  const numbered = b.routes.reduce((n, r) => n + r.visits.length, 0) <= NUMBERED_STOPS;
  const canvas = state.canvas || (state.canvas = L.canvas({ padding: 0.2 }));
  for (const t of b.technicians) {
    const home = numbered
      ? L.marker([t.home.lat, t.home.lon], {
        icon: L.divIcon({ html: el("div", { class: "home-marker" }), className: "", iconSize: [12, 12] }),
        keyboard: false,
      })
      : L.circleMarker([t.home.lat, t.home.lon], { renderer: canvas, radius: 4, color: "#111", weight: 2, fillColor: "#111", fillOpacity: 1 });
    lazyTip(home, () => `${t.name}: home`);
    state.layers.addLayer(home);
    points.push([t.home.lat, t.home.lon]);
  }
  for (const r of b.routes) {
    const colour = colourOf(r.technician_id);
    const home = byTech[r.technician_id] ? byTech[r.technician_id].home : null;
    const line = home ? [[home.lat, home.lon]] : [];
    r.visits.forEach((v, i) => {
      const job = b.jobs[v.job_id];
      if (!job) return;
      const at = [job.location.lat, job.location.lon];
      line.push(at); points.push(at);
      const m = numbered
        ? L.marker(at, { icon: numberIcon(i + 1, colour), title: v.job_id })
        : L.circleMarker(at, { renderer: canvas, radius: 5, color: colour, weight: 2, fillColor: "#fff", fillOpacity: 1 });
      lazyTip(m, () => `stop ${i + 1}: ` + visitText(v, job, byTech[r.technician_id]));
      m.on("click", () => selectJob(v.job_id, false));
      state.layers.addLayer(m);
      state.markers[v.job_id] = m;
    });
    if (home) line.push([home.lat, home.lon]);
    state.layers.addLayer(L.polyline(line, { color: colour, weight: 3, opacity: 0.8, renderer: numbered ? undefined : canvas }));
  }
  for (const w of b.waiting) {
    const job = b.jobs[w.job_id];
    if (!job) continue;
    const at = [job.location.lat, job.location.lon];
    points.push(at);
    const m = L.circleMarker(at, { radius: 6, color: "#666", fillColor: "#aaa", fillOpacity: 0.9, weight: 1 });
    lazyTip(m, () => `${w.job_id} waiting: ${w.reason}\n${w.detail}`);
    m.on("click", () => selectJob(w.job_id, false));
    state.layers.addLayer(m);
    state.markers[w.job_id] = m;
  }
  performance.mark("map-layers");
  if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.05), { animate: false });
  else map.setView([48.85, 2.35], 10);
}

function lazyTip(marker, text) {
  // A tooltip is made on first hover (or selection): binding hundreds up front cost the map its speed.
  marker.tipText = text;
  marker.once("mouseover", () => { ensureTip(marker); marker.openTooltip(); });
}

function ensureTip(marker) {
  if (!marker.getTooltip()) marker.bindTooltip(el("span", { text: marker.tipText() }));
}

function selectJob(jobId, fromTimeline) {
  state.selectedJob = jobId;
  document.querySelectorAll(".highlight").forEach((n) => n.classList.remove("highlight"));
  document.querySelectorAll(`.visit[data-job="${CSS.escape(jobId)}"], .waiting li[data-job="${CSS.escape(jobId)}"]`).forEach((n) => {
    n.classList.add("highlight");
    if (!fromTimeline) n.scrollIntoView({ block: "nearest", inline: "nearest" });
  });
  const m = state.markers[jobId];
  if (m) { ensureTip(m); m.openTooltip(); if (fromTimeline) state.map.panTo(m.getLatLng()); }
  if ($("place-job").value !== jobId && [...$("place-job").options].some((o) => o.value === jobId)) $("place-job").value = jobId;
  document.body.setAttribute("data-selected", jobId);
}

// --- waiting list and the placing form ----------------------------------------------------------

function drawWaiting() {
  const b = state.board;
  if (!b) return;
  const fp = $("filter-priority").value, fs = $("filter-skill").value, fr = $("filter-reason").value;
  fillFilter("filter-priority", b.waiting.map((w) => String((b.jobs[w.job_id] || {}).priority)), "any priority", (v) => "P" + v);
  fillFilter("filter-skill", b.waiting.flatMap((w) => Object.keys((b.jobs[w.job_id] || {}).skills || {})), "any skill");
  fillFilter("filter-reason", b.waiting.map((w) => w.reason), "any reason");
  $("filter-priority").value = fp; $("filter-skill").value = fs; $("filter-reason").value = fr;
  const list = $("waiting");
  list.replaceChildren();
  const shown = b.waiting.filter((w) => {
    const job = b.jobs[w.job_id] || {};
    return (!fp || String(job.priority) === fp) && (!fs || (job.skills || {})[fs] !== undefined) && (!fr || w.reason === fr);
  });
  $("waiting-count").textContent = `(${shown.length} of ${b.waiting.length})`;
  for (const w of shown) {
    const job = b.jobs[w.job_id] || {};
    const li = el("li", { draggable: true, "data-job": w.job_id, tabIndex: 0 },
      el("div", {}, el("b", { text: w.job_id }), ` · ${job.kind} · P${job.priority} · ${job.duration_minutes} min · ${skillsText(job.skills || {})}`),
      el("div", { class: "reason", text: `${w.reason}: ${w.detail}` }));
    if (job.notes) li.append(el("div", { text: "note: " + job.notes }));
    li.addEventListener("dragstart", (ev) => dragStart(ev, w.job_id));
    li.addEventListener("dragend", dragEnd);
    li.addEventListener("click", () => selectJob(w.job_id, false));
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { selectJob(w.job_id, false); $("place-tech").focus(); } });
    list.append(li);
  }
}

function fillFilter(id, values, label, show) {
  const box = $(id);
  box.replaceChildren(el("option", { value: "", text: label }));
  for (const v of [...new Set(values)].sort()) box.append(el("option", { value: v, text: show ? show(v) : v }));
}

function fillPlaceForm() {
  const b = state.board;
  const jobs = $("place-job"), techs = $("place-tech");
  const keep = jobs.value;
  jobs.replaceChildren();
  for (const w of b.waiting) jobs.append(el("option", { value: w.job_id, text: `${w.job_id} (waiting)` }));
  for (const r of b.routes) for (const v of r.visits) jobs.append(el("option", { value: v.job_id, text: `${v.job_id} (${r.technician_id})` }));
  if (keep) jobs.value = keep;
  techs.replaceChildren();
  for (const t of b.technicians) techs.append(el("option", { value: t.id, text: `${t.name} (${t.id})` + (t.shift_start ? "" : " · off") }));
}

function startIso(minutes) {
  // The local time on the shown day, with the service zone's offset (read off the board's clock).
  const h = String(Math.floor(minutes / 60)).padStart(2, "0"), m = String(minutes % 60).padStart(2, "0");
  const sample = (state.board.technicians.find((t) => t.shift_start) || {}).shift_start || state.board.now;
  return `${state.day}T${h}:${m}:00${offsetOf(sample)}`;
}

async function evaluateForm(placeIt) {
  const jobId = $("place-job").value, techId = $("place-tech").value, time = $("place-time").value;
  if (!jobId || !techId) return;
  const minutes = time ? Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5)) : null;
  if (placeIt) await drop(jobId, techId, minutes);
  else await evaluateAt(jobId, techId, minutes);
}

async function unpinSelected() {
  const jobId = $("place-job").value;
  if (!jobId) return;
  try {
    await api("DELETE", `/v1/requests/${encodeURIComponent(jobId)}/pin`);
    showEvaluation({ feasible: true, detail: `${jobId} unpinned: the next re-plan may move it` });
    await loadDay();
  } catch (e) { showEvaluation({ feasible: false, reason: "error", detail: e.message }); }
}

// --- drag, the evaluation before the drop, and the drop ------------------------------------------

let dragged = null;
function dragStart(ev, jobId) {
  dragged = jobId;
  ev.dataTransfer.setData("text/plain", jobId);
  ev.dataTransfer.effectAllowed = "move";
  hideTip();
  selectJob(jobId, true);
}

function dragEnd() {
  dragged = null;
  document.querySelectorAll(".drop-ok, .drop-no").forEach((n) => n.classList.remove("drop-ok", "drop-no"));
  document.querySelectorAll(".ghost").forEach((n) => n.remove());
}

function minuteAt(lane, clientX) {
  const box = lane.getBoundingClientRect();
  const m = state.t0 + ((clientX - box.left) / box.width) * (state.t1 - state.t0);
  return Math.max(state.t0, Math.round(m / SNAP_MINUTES) * SNAP_MINUTES);
}

function wireDrop(lane, tech) {
  lane.addEventListener("dragover", (ev) => {
    if (!dragged) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    const minutes = minuteAt(lane, ev.clientX);
    const probe = `${dragged}|${tech.id}|${minutes}`;
    if (probe === state.lastProbe) return;
    state.lastProbe = probe;
    ghost(lane, minutes);
    evaluateAt(dragged, tech.id, minutes, lane);
  });
  lane.addEventListener("dragleave", () => { lane.classList.remove("drop-ok", "drop-no"); });
  lane.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    const jobId = dragged || ev.dataTransfer.getData("text/plain");
    const minutes = minuteAt(lane, ev.clientX);
    dragEnd();
    state.lastProbe = "";
    await drop(jobId, tech.id, minutes);
  });
}

function ghost(lane, minutes) {
  document.querySelectorAll(".ghost").forEach((n) => n.remove());
  const job = state.board.jobs[dragged] || { duration_minutes: 60 };
  const g = el("div", { class: "ghost" });
  g.style.left = pct(minutes); g.style.width = width(minutes, minutes + job.duration_minutes);
  lane.append(g);
}

async function evaluateAt(jobId, techId, minutes, lane) {
  const seq = ++state.evalSeq;
  const body = { job_id: jobId, technician_id: techId, date: state.day };
  if (minutes !== null && minutes !== undefined) body.start = startIso(minutes);
  if (state.board.plan_version == null) { showEvaluation({ feasible: false, reason: "no_plan", detail: "no plan for this day yet" }); return null; }
  try {
    const result = await api("POST", `/v1/plans/${state.board.plan_version}/evaluate`, body);
    if (seq !== state.evalSeq) return null; // a newer hover answered first
    showEvaluation(result, jobId, techId);
    if (lane) {
      lane.classList.toggle("drop-ok", result.feasible);
      lane.classList.toggle("drop-no", !result.feasible);
      document.querySelectorAll(".ghost").forEach((n) => n.classList.toggle("no", !result.feasible));
    }
    return result;
  } catch (e) {
    if (seq === state.evalSeq) showEvaluation({ feasible: false, reason: "error", detail: e.message });
    return null;
  }
}

function showEvaluation(r, jobId, techId) {
  const box = $("evaluation");
  box.replaceChildren();
  box.className = "evaluation " + (r.feasible ? "ok" : "no");
  box.setAttribute("data-feasible", r.feasible ? "yes" : "no");
  const head = jobId ? `${jobId} → ${techId}: ` : "";
  box.append(el("div", {}, el("b", { text: r.feasible ? "Feasible" : "Not possible" + (r.reason ? ` (${r.reason})` : "") }), " " + head + r.detail));
  if (r.cost) {
    box.append(el("div", { text: `added travel ${r.cost.added_travel_minutes} min · overtime ${r.cost.overtime_minutes} min · SLA lateness ${r.cost.sla_late_minutes} min · cost ${r.cost.total}` }));
    if (r.cost.pushed_out.length) box.append(el("div", { text: "gives way: " + r.cost.pushed_out.join(", ") }));
  }
  if (r.shifted && r.shifted.length) {
    box.append(el("div", { text: "shifts: " + r.shifted.map((s) => `${s.job_id} ${s.minutes > 0 ? "+" : ""}${s.minutes} min`).join(", ") }));
  }
}

async function drop(jobId, techId, minutes) {
  const body = { technician_id: techId, date: state.day };
  if (minutes !== null && minutes !== undefined) body.start = startIso(minutes);
  try {
    const r = await api("PUT", `/v1/requests/${encodeURIComponent(jobId)}/pin`, body);
    const e = r.evaluation || { feasible: true, detail: "pinned" };
    showEvaluation({ ...e, detail: `pinned (version ${r.plan_version}): ` + e.detail }, jobId, techId);
    await loadDay();
    selectJob(jobId, true);
  } catch (e) {
    showEvaluation({ feasible: false, reason: e.status === 409 ? "refused" : "error", detail: e.message }, jobId, techId);
  }
}

// --- plan runs, the diff, publishing -------------------------------------------------------------

async function replan() {
  $("replan").disabled = true;
  try {
    const run = await api("POST", "/v1/plans", { start: state.day, days: 1, from_now: true });
    await follow(run.run_id);
  } catch (e) {
    $("run").textContent = "re-plan refused: " + e.message;
  } finally {
    $("replan").disabled = false;
  }
}

function follow(runId) {
  return new Promise((resolve) => {
    const tick = async () => {
      let run;
      try { run = await api("GET", `/v1/runs/${runId}`); } catch (e) { $("run").textContent = e.message; return; }
      const planned = run.summary && run.summary.planned != null ? `, ${run.summary.planned} jobs planned` : "";
      $("run").textContent = `run ${run.id}: ${run.status} · ${run.phase} · ${Math.round(run.progress * 100)} %${planned}`;
      $("run").setAttribute("data-status", run.status);
      if (["succeeded", "failed", "abandoned"].includes(run.status)) {
        clearInterval(state.polling);
        state.polling = null;
        if (run.status === "failed") $("run").textContent += ": " + (run.error || "");
        await loadDay();
        resolve(run);
      }
    };
    state.polling = setInterval(tick, 500);
    tick();
  });
}

function drawDiff(d) {
  const list = $("diff");
  list.replaceChildren();
  if (!d) { list.append(el("li", { text: "no plan" })); return; }
  if (d.proposed_version == null) { list.append(el("li", { text: "no proposal: the plan shown is what technicians see" })); return; }
  if (!d.changes.length) list.append(el("li", { text: `proposal ${d.proposed_version}: no change for technicians` }));
  for (const c of d.changes) {
    list.append(el("li", { "data-change": c.change, "data-job": c.job_id }, el("span", { class: "change", text: c.change }), `${c.job_id}: ${c.detail}`));
  }
}

async function publish() {
  try {
    const r = await api("POST", `/v1/days/${state.day}/publish`);
    $("run").textContent = `published ${r.date}: version ${r.plan_version}, ${r.dispatched} visits dispatched`;
    await loadDay();
  } catch (e) { $("run").textContent = "publish failed: " + e.message; }
}

// --- the week -----------------------------------------------------------------------------------

async function drawWeek() {
  const box = $("week");
  box.replaceChildren();
  const first = new Date(state.day + "T12:00:00Z");
  const days = [];
  for (let i = 0; days.length < 5 && i < 9; i++) {
    const d = new Date(first.getTime() + i * 86400000);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) days.push(d.toISOString().slice(0, 10));
  }
  const boards = await Promise.all(days.map((d) => api("GET", `/v1/days/${d}/board?version=${state.version}`).catch(() => null)));
  box.style.gridTemplateColumns = `150px repeat(${days.length}, minmax(120px, 1fr))`;
  box.append(el("div", { class: "head", text: "technician" }));
  days.forEach((d, i) => {
    const b = boards[i];
    const planned = b && b.kpis ? ` · ${b.kpis.jobs_planned} jobs` : "";
    const head = el("div", { class: "head", text: d + planned, title: "open this day" });
    head.addEventListener("click", () => { state.day = d; $("day").value = d; setView("day"); });
    box.append(head);
  });
  const techs = (boards.find((b) => b) || state.board).technicians;
  for (const t of techs) {
    box.append(el("div", { class: "cell head", text: t.name }));
    for (const b of boards) {
      const cell = el("div", { class: "cell", "data-tech": t.id });
      const r = b && b.routes.find((x) => x.technician_id === t.id);
      if (r) {
        for (const v of r.visits) {
          const job = b.jobs[v.job_id] || {};
          const s = minutesOfDay(v.start), e = minutesOfDay(v.end);
          const bar = el("div", { class: "mini kind-" + job.kind, title: visitText(v, job, t) });
          bar.style.left = ((s - 420) / 720) * 100 + "%";
          bar.style.width = Math.max(0.5, ((e - s) / 720) * 100) + "%";
          cell.append(bar);
        }
      }
      box.append(cell);
    }
  }
}

// --- the technician's day -----------------------------------------------------------------------

async function technicianDay(techId) {
  $("tech-title").textContent = `My day · ${techId}`;
  let route;
  try { route = await api("GET", "/v1/me/route"); } catch (e) {
    $("tech-state").textContent = e.status === 404 ? "No route for you today." : "Could not load your route: " + e.message;
    $("stops").replaceChildren();
    document.body.setAttribute("data-ready", "1");
    return;
  }
  $("tech-state").textContent = `${route.date} · ${route.stops.length} visits · ${route.published ? "published" : "not published yet"}`;
  const list = $("stops");
  list.replaceChildren();
  for (const s of route.stops) {
    const li = el("li", { "data-job": s.job_id },
      el("span", { class: "status", text: s.status }),
      el("div", { class: "time", text: `${s.seq}. ${hhmm(s.start)}-${hhmm(s.end)} · ${s.kind}` }),
      el("div", { text: s.job_id + (s.customer_id ? " · " + s.customer_id : "") }),
      el("div", { class: "meta", text: s.address || `${s.location.lat.toFixed(5)}, ${s.location.lon.toFixed(5)}` }));
    if (s.notes) li.append(el("div", { class: "meta", text: "note: " + s.notes }));
    if (/^https:\/\//.test(s.maps_url)) li.append(el("a", { href: s.maps_url, target: "_blank", rel: "noopener noreferrer", text: "Open in maps" }));
    const reason = el("input", { placeholder: "reason if failed", "data-role": "reason" });
    const actions = el("div", { class: "actions" });
    for (const [status, label] of [["en_route", "En route"], ["started", "Started"], ["completed", "Completed"], ["failed", "Failed"]]) {
      const button = el("button", { type: "button", text: label, "data-status": status });
      button.addEventListener("click", async () => {
        const body = { status };
        if (status === "failed") body.reason = reason.value.trim();
        try {
          await api("POST", `/v1/visits/${encodeURIComponent(s.job_id)}/status`, body);
          await technicianDay(techId);
        } catch (e) { $("tech-state").textContent = `${s.job_id}: ${e.message}`; }
      });
      actions.append(button);
    }
    actions.append(reason);
    li.append(actions);
    list.append(li);
  }
  document.body.setAttribute("data-ready", "1");
}

document.addEventListener("DOMContentLoaded", start);

// --- maintenance: compliance and the 12-week forecast chart -------------------------------------

async function toggleMaintenance() {
  const panel = $("maintenance-panel");
  const open = panel.hidden;
  panel.hidden = !open;
  $("maintenance-toggle").setAttribute("aria-expanded", String(open));
  $("maintenance-toggle").classList.toggle("on", open);
  if (!open) return;
  const summary = $("maintenance-summary");
  summary.textContent = "loading…";
  try {
    const c = await api("GET", "/v1/maintenance/compliance");
    const share = c.in_window_share === null ? "no visit settled yet" : (100 * c.in_window_share).toFixed(1) + " % inside their window";
    summary.textContent = share + " · " + c.at_risk.length + " at risk in the next 14 days";
    // The visits whose window closes soonest, unplanned: what a dispatcher acts on first.
    const list = $("at-risk");
    list.replaceChildren();
    for (const r of c.at_risk.slice(0, 5)) {
      const li = document.createElement("li");
      li.dataset.job = r.key;
      li.textContent = r.key + " · due " + r.due + " · window closes " + r.latest + " (" + r.days_left + " d) · " + r.reason;
      list.appendChild(li);
    }
    // The chart needs the key: fetched like every other call, shown from a blob URL.
    const res = await fetch("/v1/maintenance/forecast?weeks=12&format=png", {
      headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) },
    });
    if (!res.ok) throw new Error("forecast: " + res.status);
    const img = $("forecast");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await res.blob());
  } catch (e) {
    summary.textContent = "maintenance: " + e.message;
  }
}
