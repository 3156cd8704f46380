// vigil's web UI: a fleet overview (#/) and an entity view (#/entity/NAME) over the HTTP API
// that docs/serve.md describes. Plain JavaScript, no build step; charts by uPlot
// (vendor/uplot). Whatever the API returns goes into the page as text, never as HTML.
"use strict";

const RANGES = [
  ["15 min", 15 * 60e3],
  ["1 hour", 3600e3],
  ["6 hours", 6 * 3600e3],
  ["1 day", 24 * 3600e3],
  ["7 days", 7 * 24 * 3600e3],
];
const PAGE_ROWS = 100000; // the API's largest page
const OVERVIEW_REFRESH_MS = 5000;
// The entity view reloads its whole range: every 10 s for an hour, less often for longer ranges.
const entityRefreshMs = (rangeMs) => Math.max(10000, rangeMs / 360);
// The overview's "recent alarms": the hour before each entity's newest step.
const RECENT_MS = 3600e3;
const COLOURS = {
  alarm: "rgba(220, 38, 38, 0.18)",
  not_anomaly: "rgba(22, 163, 74, 0.6)",
  anomaly: "rgba(234, 88, 12, 0.6)",
  maintenance: "rgba(107, 114, 128, 0.6)",
  score: "#2563eb",
  threshold: "#dc2626",
  metric: "#374151",
};

// What tests and curious operators can reach from the console: the charts drawn now.
window.vigil = { charts: {} };

// ---- the API ---------------------------------------------------------------------------------

// The tenant is kept across visits; the token only for this tab's session.
const access = {
  get tenant() { return localStorage.getItem("vigil.tenant") || ""; },
  get token() { return sessionStorage.getItem("vigil.token") || ""; },
  set(tenant, token) {
    localStorage.setItem("vigil.tenant", tenant);
    sessionStorage.setItem("vigil.token", token);
  },
};

// Each view's requests are aborted when the operator leaves it (see `route`).
let leaving = new AbortController();

// `path` is the API's (`/api/v1/...`), asked relative to the page so that the UI works behind a
// proxy that adds a path prefix.
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers);
  if (access.token) headers["Authorization"] = "Bearer " + access.token;
  if (access.tenant) headers["X-Scope-OrgID"] = access.tenant;
  const response = await fetch(".." + path,
    Object.assign({ signal: leaving.signal }, options, { headers }));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : text.trim();
    throw new Error(`${response.status} ${response.statusText}: ${message}`);
  }
  return body;
}

// Every row of an entity's `what` (scores or samples) from `from` to `to`, page by page: a full
// page may end inside a step, so that step is asked for again with the next page. Samples come
// as [ts, metric index, value] and are given names here.
async function allRows(entity, what, from, to) {
  let rows = [];
  let cursor = from;
  let metrics = [];
  for (;;) {
    const body = await api(`/api/v1/entities/${encodeURIComponent(entity)}/${what}` +
      `?from=${cursor}&to=${to}&limit=${PAGE_ROWS}`);
    metrics = body.metrics;
    const page = what === "samples"
      ? body.samples.map(([ts, metric, value]) => ({ ts, metric, value }))
      : body[what];
    if (page.length < PAGE_ROWS) return { metrics, rows: rows.concat(page) };
    const lastTs = page[page.length - 1].ts;
    const whole = page.filter((r) => r.ts < lastTs);
    if (whole.length === 0) throw new Error(`one step of ${entity} has over ${PAGE_ROWS} ${what}`);
    rows = rows.concat(whole);
    cursor = lastTs;
  }
}

// ---- small helpers -----------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    // Styles through the DOM: the page's CSP refuses style attributes.
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Times are shown in UTC, as the API and Prometheus give them.
function timeText(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function durationText(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function numberText(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return Math.abs(x) >= 1000 ? x.toExponential(2) : x.toFixed(digits);
}

function scoreBar(anomalyScore, alarm) {
  // 1.0 (the alarm boundary) sits in the middle of the bar.
  const width = Math.max(0, Math.min(anomalyScore / 2, 1)) * 100;
  return el("span", { class: "score" }, numberText(anomalyScore),
    el("span", { class: "bar" + (alarm ? " alarm" : "") },
      el("span", { style: { width: `${width}%` } }), el("i")));
}

function showProblem(error) {
  const box = document.getElementById("problem");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = String(error.message || error) +
    (String(error.message || "").startsWith("401") || String(error.message || "").startsWith("403")
      ? "\nGive a token with read scope (and the tenant) above." : "");
}

// ---- routing -----------------------------------------------------------------------------------

let refreshTimer = null;
// Which view is current: a view's late answers and timers check it and stop once it changed.
let generation = 0;

function route() {
  clearTimeout(refreshTimer);
  generation += 1;
  leaving.abort();
  leaving = new AbortController();
  for (const chart of Object.values(window.vigil.charts)) chart.destroy();
  window.vigil.charts = {};
  showProblem(null);
  const view = document.getElementById("view");
  view.replaceChildren();
  delete view.dataset.loaded;
  const match = (location.hash || "#/").match(/^#\/entity\/([^?]+)(?:\?range=(\d+))?$/);
  let entity = null;
  try { entity = match && decodeURIComponent(match[1]); } catch (_) { entity = null; }
  if (entity) showEntity(view, entity, Number(match[2]) || RANGES[1][1]);
  else showOverview(view);
}

async function showModel() {
  const target = document.getElementById("model-in-service");
  try {
    // (Not the view's request: changing views does not abort it.)
    const status = await api("/api/v1/status", { signal: null });
    target.textContent = `${status.model}@${status.version} · ${status.detector} · ` +
      `${status.metrics.length} metrics`;
  } catch (_) {
    target.textContent = "";
  }
}

// ---- the fleet overview ------------------------------------------------------------------------

const COLUMNS = [
  { key: "entity", title: "Entity", value: (e) => e.entity },
  { key: "labels", title: "Labels", value: (e) => e.labels.map(([k, v]) => `${k}=${v}`).join(" ") },
  { key: "latest", title: "Newest step", value: (e) => (e.latest ? e.latest[0] : null) },
  { key: "anomaly_score", title: "anomaly_score", value: (e) => (e.latest ? e.latest[1] : null) },
  { key: "state", title: "Now", value: (e) => (e.latest ? (e.latest[2] ? 1 : 0) : null) },
  { key: "recent_alarms", title: "Alarmed steps, hour before newest", value: (e) => e.recent_alarms },
  { key: "last_alarm", title: "Last alarm", value: (e) => e.last_alarm },
];

const overview = { sort: "anomaly_score", descending: true, filter: "" };

function showOverview(view) {
  const summary = el("span", { class: "muted" });
  const filter = el("input", {
    type: "search", placeholder: "filter entities", value: overview.filter,
    oninput: (event) => { overview.filter = event.target.value; draw(); },
  });
  const head = el("tr");
  const body = el("tbody");
  view.append(el("h1", {}, "Fleet"), el("div", { class: "toolbar" }, filter, summary),
    el("table", { id: "entities" }, el("thead", {}, head), body));
  let entities = [];

  const sortBy = (key) => {
    if (overview.sort === key) overview.descending = !overview.descending;
    else { overview.sort = key; overview.descending = key !== "entity" && key !== "labels"; }
    draw();
  };
  function draw() {
    head.replaceChildren(...COLUMNS.map((c) => el("th", {
      class: "sortable", onclick: () => sortBy(c.key),
      "aria-sort": overview.sort === c.key ? (overview.descending ? "descending" : "ascending") : null,
    }, c.title)));
    const column = COLUMNS.find((c) => c.key === overview.sort);
    const needle = overview.filter.toLowerCase();
    const shown = entities
      .filter((e) => !needle || e.entity.toLowerCase().includes(needle) ||
        COLUMNS[1].value(e).toLowerCase().includes(needle))
      .sort((a, b) => compare(column.value(a), column.value(b), overview.descending));
    body.replaceChildren(...shown.map((e) => {
      const alarm = e.latest && e.latest[2];
      return el("tr", { class: alarm ? "alarm" : null, "data-entity": e.entity },
        el("td", {}, el("a", { href: `#/entity/${encodeURIComponent(e.entity)}` }, e.entity)),
        el("td", { class: "labels" }, COLUMNS[1].value(e)),
        el("td", {}, e.latest ? timeText(e.latest[0]) : el("span", { class: "muted" }, "not scored yet")),
        el("td", { class: "number" }, e.latest ? scoreBar(e.latest[1], alarm) : "–"),
        el("td", {}, e.latest ? el("span", { class: "badge " + (alarm ? "alarm" : "ok") }, alarm ? "alarm" : "ok") : "–"),
        el("td", { class: "number" }, e.recent_alarms),
        el("td", {}, timeText(e.last_alarm)));
    }));
    const alarming = entities.filter((e) => e.latest && e.latest[2]).length;
    summary.textContent = `${entities.length} entities · ${alarming} alarming now` +
      (shown.length < entities.length ? ` · ${shown.length} shown` : "");
  }
  const mine = generation;
  async function load() {
    try {
      const body = await api(`/api/v1/entities?recent_ms=${RECENT_MS}`);
      if (mine !== generation) return;
      entities = body.entities;
      draw();
      showProblem(null);
      view.dataset.loaded = "overview";
    } catch (error) {
      if (mine !== generation) return;
      showProblem(error);
    }
    refreshTimer = setTimeout(load, OVERVIEW_REFRESH_MS);
  }
  load();
}

// Nulls last whichever way; numbers as numbers, text as text.
function compare(a, b, descending) {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
  if (b === null || b === undefined) return -1;
  const order = typeof a === "string" ? a.localeCompare(b) : a - b;
  return descending ? -order : order;
}

// ---- the entity view ---------------------------------------------------------------------------

// Consecutive rows for which `test` holds, as bands [start, end] widened by half a step each
// way, so that a single alarmed step is a visible band.
function bandsOf(rows, test, stepMs) {
  const bands = [];
  for (const row of rows) {
    if (!test(row)) continue;
    const last = bands[bands.length - 1];
    if (last && row.ts - last.lastTs <= stepMs * 1.5) {
      last.lastTs = row.ts;
      last.end = row.ts + stepMs / 2;
      last.peak = Math.max(last.peak, row.anomaly_score);
      last.steps += 1;
    } else {
      bands.push({ firstTs: row.ts, lastTs: row.ts, start: row.ts - stepMs / 2,
        end: row.ts + stepMs / 2, peak: row.anomaly_score, steps: 1 });
    }
  }
  return bands;
}

function medianStep(ts) {
  const gaps = [];
  for (let i = 1; i < ts.length; i++) gaps.push(ts[i] - ts[i - 1]);
  gaps.sort((a, b) => a - b);
  return gaps.length ? gaps[gaps.length >> 1] : 1000;
}

// Draws bands behind a chart's lines: `top` and `height` as fractions of the plotting area.
function drawBands(u, bands, colour, top = 0, height = 1) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.fillStyle = colour;
  for (const band of bands) {
    const left = Math.max(u.valToPos(band.start / 1000, "x", true), bbox.left);
    const right = Math.min(u.valToPos(band.end / 1000, "x", true), bbox.left + bbox.width);
    if (right <= left) continue;
    ctx.fillRect(left, bbox.top + top * bbox.height, Math.max(right - left, 1),
      height * bbox.height);
  }
  ctx.restore();
}

// An axis tick: small and large values in powers of ten (a log axis spans many decades).
function tickText(v) {
  if (v === null || v === undefined) return "";
  if (v === 0) return "0";
  const size = Math.abs(v);
  return size < 1e-3 || size >= 1e5 ? v.toExponential(0) : String(+v.toPrecision(3));
}

// A time chart's options: `hooks` are uPlot's (each a list), `extra` anything else to set.
function chartOptions(width, height, series, hooks, extra = {}) {
  return Object.assign({
    width, height,
    axes: [{}, { values: (u, splits) => splits.map(tickText), size: 56, space: 24 }],
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    cursor: { sync: { key: "vigil" }, drag: { x: true, y: false, setScale: false } },
    legend: { live: true },
    scales: { x: { time: true } },
    series: [{ label: "time (UTC)", value: (u, v) => (v === null ? "–" : timeText(v * 1000)) }]
      .concat(series),
    hooks,
  }, extra);
}

function showEntity(view, entity, rangeMs) {
  const state = { entity, rangeMs, scores: [], metrics: [], samples: null, feedback: null,
    // The brushed range waiting for a label, and the step whose contributions are shown (by
    // time: a refresh moves the range, and an index would then point at another step).
    selection: null, chosenTs: null, stepMs: 1000, following: true, pointerDown: false,
    // Log by default: an alarm's score can be orders of magnitude above the threshold, which a
    // linear axis then flattens to a line at zero.
    scale: localStorage.getItem("vigil.scale") || "log" };
  const rangeSelect = el("select", {
    onchange: (event) => {
      location.hash = `#/entity/${encodeURIComponent(entity)}?range=${event.target.value}`;
    },
  }, RANGES.map(([name, ms]) => el("option", { value: ms, selected: ms === rangeMs }, name)));
  const scaleSelect = el("select", {
    onchange: (event) => {
      state.scale = event.target.value;
      localStorage.setItem("vigil.scale", state.scale);
      drawScoreChart();
    },
  }, ["log", "linear"].map((s) => el("option", { value: s, selected: s === state.scale }, s)));
  const follow = el("input", { type: "checkbox", id: "auto-refresh", checked: true,
    onchange: (event) => { state.following = event.target.checked; } });
  const summary = el("span", { class: "muted" });
  const scoreChart = el("div", { class: "chart", id: "score-chart" });
  const selection = el("div", { id: "selection", hidden: true });
  const saved = el("p", { id: "saved" });
  const contributions = el("div", { class: "contributions", id: "contributions" });
  const alarms = el("tbody");
  const feedback = el("tbody");
  const metrics = el("div", { class: "metrics", id: "metric-charts" });
  view.append(
    el("p", {}, el("a", { href: "#/" }, "← Fleet")),
    el("h1", {}, entity),
    el("div", { class: "toolbar" }, el("label", {}, "last ", rangeSelect),
      el("label", {}, "score axis ", scaleSelect),
      el("label", {}, follow, ` refresh every ${durationText(entityRefreshMs(rangeMs))}`), summary),
    el("div", { class: "columns" },
      el("div", {},
        scoreChart,
        el("p", { class: "legend-note" },
          "Drag across the chart to select steps and give feedback; click a step for its " +
          "contributions. Bands:", el("span", { class: "swatch alarm" }), "alarm",
          el("span", { class: "swatch not_anomaly" }), "false alarm",
          el("span", { class: "swatch anomaly" }), "missed anomaly",
          el("span", { class: "swatch maintenance" }), "maintenance"),
        selection, saved),
      contributions),
    el("h2", {}, "Alarms"),
    el("table", { id: "alarms" }, el("thead", {}, el("tr", {},
      el("th", {}, "From"), el("th", {}, "To"), el("th", {}, "Steps"), el("th", {}, "Peak anomaly_score"))),
      alarms),
    el("h2", {}, "Metrics"),
    metrics,
    el("h2", {}, "Feedback"),
    el("table", { id: "feedback" }, el("thead", {}, el("tr", {},
      el("th", {}, "#"), el("th", {}, "Given"), el("th", {}, "From"), el("th", {}, "To"),
      el("th", {}, "Label"), el("th", {}, "Kind"), el("th", {}, "Comment"), el("th", {}, "Author"))),
      feedback));

  // Feedback covers whole steps: widened by half a step each way, as alarm bands are.
  const feedbackBands = () => (state.feedback ? state.feedback.effective : []).map((f) => ({
    start: f.start - state.stepMs / 2, end: f.end + state.stepMs / 2,
    label: f.kind === "maintenance" ? "maintenance" : f.label,
  }));
  const alarmBands = () => bandsOf(state.scores, (r) => r.alarm, state.stepMs);

  function drawScoreChart() {
    const width = Math.max(scoreChart.clientWidth - 10, 300);
    const log = state.scale === "log";
    // A log axis cannot show a score of zero or below: such steps are left out of the line.
    const drawable = (v) => (log && !(v > 0) ? null : v);
    const data = [
      state.scores.map((r) => r.ts / 1000),
      state.scores.map((r) => drawable(r.score)),
      state.scores.map((r) => drawable(r.threshold)),
    ];
    const drawClear = (u) => {
      drawBands(u, alarmBands(), COLOURS.alarm);
      for (const label of ["not_anomaly", "anomaly", "maintenance"]) {
        // Feedback as a strip along the bottom, so it reads beside an alarm, not over it.
        drawBands(u, feedbackBands().filter((b) => b.label === label), COLOURS[label], 0.9, 0.1);
      }
    };
    const options = chartOptions(width, 280, [
      { label: "score", stroke: COLOURS.score, width: 1.5, value: (u, v) => numberText(v, 4) },
      { label: "threshold", stroke: COLOURS.threshold, dash: [6, 4], width: 1,
        value: (u, v) => numberText(v, 4) },
    ], { drawClear: [drawClear], setSelect: [(u) => chooseRange(u)] }, {
      scales: { x: { time: true }, y: log ? { distr: 3 } : {} },
    });
    if (window.vigil.charts.score) window.vigil.charts.score.destroy();
    scoreChart.replaceChildren();
    const chart = new uPlot(options, data, scoreChart);
    chart.over.addEventListener("click", () => {
      // A click (not a drag) drops the brushed range and shows the step's contributions.
      if (chart.select.width > 1) return;
      forgetSelection();
      const row = state.scores[chart.cursor.idx];
      if (!row) return;
      state.chosenTs = row.ts;
      drawContributions();
    });
    // No refresh while a brush is being drawn (the chart would be rebuilt under the pointer).
    chart.over.addEventListener("pointerdown", () => { state.pointerDown = true; });
    window.vigil.charts.score = chart;
  }

  function forgetSelection() {
    state.selection = null;
    drawSelection();
    const chart = window.vigil.charts.score;
    if (chart && chart.select.width > 0) chart.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  }

  function chooseRange(u) {
    if (u.select.width < 2) { state.selection = null; drawSelection(); return; }
    const from = u.posToVal(u.select.left, "x") * 1000;
    const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
    // Feedback covers whole steps: the first and last step inside the brushed range.
    const inside = state.scores.filter((r) => r.ts >= from && r.ts <= to);
    const start = inside.length ? inside[0].ts : Math.round(from);
    const end = inside.length ? inside[inside.length - 1].ts : Math.round(to);
    state.selection = { start, end, steps: inside.length,
      alarmed: inside.filter((r) => r.alarm).length };
    drawSelection();
  }

  function drawSelection() {
    const chosen = state.selection;
    if (!chosen) { selection.hidden = true; selection.replaceChildren(); return; }
    const comment = el("input", { id: "feedback-comment", placeholder: "comment", size: 28 });
    const author = el("input", { id: "feedback-author", placeholder: "your name", size: 12,
      value: localStorage.getItem("vigil.author") || "" });
    const send = (label, kind) => async () => {
      localStorage.setItem("vigil.author", author.value);
      try {
        const row = await api("/api/v1/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ entity, start: chosen.start, end: chosen.end, label, kind,
            comment: comment.value, author: author.value }),
        });
        showProblem(null);
        saved.textContent = `Saved as feedback #${row.id}: ${row.label.replace("_", " ")} ` +
          `(${row.kind}) from ${timeText(row.start)} to ${timeText(row.end)}`;
        forgetSelection();
        await loadFeedback();
        window.vigil.charts.score.redraw(false);
      } catch (error) {
        showProblem(error);
      }
    };
    selection.hidden = false;
    selection.replaceChildren(
      el("strong", {}, `${timeText(chosen.start)} – ${timeText(chosen.end)}`),
      el("span", { class: "muted" }, `${chosen.steps} steps, ${chosen.alarmed} alarmed`),
      el("button", { class: "not_anomaly", id: "mark-false-alarm", onclick: send("not_anomaly", "range") }, "False alarm"),
      el("button", { class: "anomaly", id: "mark-missed-anomaly", onclick: send("anomaly", "range") }, "Missed anomaly"),
      el("button", { class: "maintenance", id: "mark-maintenance", onclick: send("not_anomaly", "maintenance") }, "Maintenance"),
      el("button", { class: "auto", id: "withdraw-feedback", onclick: send("auto", "range") }, "Withdraw feedback"),
      comment, author,
      el("button", { class: "auto", onclick: forgetSelection }, "Cancel"));
  }

  function drawContributions() {
    const row = state.scores.find((r) => r.ts === state.chosenTs);
    if (!row) {
      contributions.replaceChildren(el("h2", {}, "Contributions"),
        el("p", { class: "muted" }, "No scored step in this range."));
      return;
    }
    const parts = state.metrics.map((name, i) => ({ name, value: row.contributions[i] ?? 0 }))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    const largest = Math.max(...parts.map((p) => Math.abs(p.value)), 1e-12);
    contributions.replaceChildren(
      el("h2", {}, "Contributions"),
      el("p", {}, timeText(row.ts), " ", el("span", { class: "badge " + (row.alarm ? "alarm" : "ok") },
        row.alarm ? "alarm" : "ok")),
      el("p", { class: "muted" }, `anomaly_score ${numberText(row.anomaly_score)} · ` +
        `score ${numberText(row.score, 4)} · threshold ${numberText(row.threshold, 4)} · ${row.model}` +
        (row.filled ? ` · ${row.filled} metrics filled` : "")),
      el("ol", {}, parts.map((p) => el("li", { "data-metric": p.name },
        el("span", { class: "name", title: p.name }, p.name),
        el("span", { class: "bar" }, el("span", { style: { width: `${(Math.abs(p.value) / largest) * 100}%` } })),
        el("span", { class: "number" }, numberText(p.value, 4))))));
  }

  function drawAlarms() {
    const bands = alarmBands();
    alarms.replaceChildren(...(bands.length ? bands.reverse().map((b) => el("tr", {},
      el("td", {}, timeText(b.firstTs)), el("td", {}, timeText(b.lastTs)),
      el("td", { class: "number" }, b.steps), el("td", { class: "number" }, numberText(b.peak))))
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No alarm in this range."))]));
  }

  function drawMetrics() {
    for (const key of Object.keys(window.vigil.charts)) {
      if (key.startsWith("metric:")) { window.vigil.charts[key].destroy(); delete window.vigil.charts[key]; }
    }
    metrics.replaceChildren();
    const samples = state.samples;
    if (!samples || samples.rows.length === 0) {
      metrics.append(el("p", { class: "muted" }, "No samples in this range."));
      return;
    }
    const times = [...new Set(samples.rows.map((r) => r.ts))].sort((a, b) => a - b);
    const position = new Map(times.map((t, i) => [t, i]));
    const columns = samples.metrics.map(() => new Array(times.length).fill(null));
    for (const r of samples.rows) {
      // (An index the model in service does not name, as after a model swap, is not drawn.)
      if (columns[r.metric]) columns[r.metric][position.get(r.ts)] = r.value;
    }
    samples.metrics.forEach((name, i) => {
      const box = el("div", { class: "chart", "data-metric": name }, el("h3", { title: name }, name));
      metrics.append(box);
      const drawClear = (u) => drawBands(u, alarmBands(), COLOURS.alarm);
      const chart = new uPlot(chartOptions(Math.max(box.clientWidth - 10, 280), 120, [
        { label: name, stroke: COLOURS.metric, width: 1, value: (u, v) => numberText(v, 3) },
      ], { drawClear: [drawClear] }, { legend: { show: false } }), [times.map((t) => t / 1000), columns[i]], box);
      window.vigil.charts[`metric:${name}`] = chart;
    });
  }

  function drawFeedbackTable() {
    const history = state.feedback ? state.feedback.history.slice().reverse() : [];
    feedback.replaceChildren(...(history.length ? history.map((f) => el("tr", {},
      el("td", { class: "number" }, f.id), el("td", {}, timeText(f.received_at)),
      el("td", {}, timeText(f.start)), el("td", {}, timeText(f.end)),
      el("td", {}, el("span", { class: "badge " + f.label }, f.label.replace("_", " "))),
      el("td", {}, f.kind), el("td", {}, f.comment), el("td", {}, f.author)))
      : [el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No feedback yet."))]));
  }

  async function loadFeedback() {
    state.feedback = await api(`/api/v1/feedback?entity=${encodeURIComponent(entity)}`);
    drawFeedbackTable();
  }

  const mine = generation;
  window.addEventListener("pointerup", () => { state.pointerDown = false; }, { signal: leaving.signal });
  async function load() {
    try {
      // (recent_ms=1: the view counts its alarms itself.)
      const { entity: row } = await api(`/api/v1/entities/${encodeURIComponent(entity)}?recent_ms=1`);
      const to = row.latest ? row.latest[0] : row.first_seen + rangeMs;
      const from = to - rangeMs;
      const [scores, samples] = await Promise.all([
        allRows(entity, "scores", from, to),
        allRows(entity, "samples", from, to),
      ]);
      const answered = await api(`/api/v1/feedback?entity=${encodeURIComponent(entity)}`);
      if (mine !== generation) return;
      state.scores = scores.rows;
      state.metrics = scores.metrics;
      state.samples = samples;
      state.stepMs = medianStep(state.scores.map((r) => r.ts));
      state.feedback = answered;
      drawFeedbackTable();
      const alarmed = state.scores.filter((r) => r.alarm).length;
      summary.textContent = row.latest
        ? `${state.scores.length} scored steps to ${timeText(to)} · ${alarmed} alarmed · ` +
          `step ${durationText(state.stepMs)}`
        : "No step scored yet: the model waits for a full window of steps.";
      if (!state.scores.some((r) => r.ts === state.chosenTs)) {
        // Until a step is clicked (or once it left the range), the most anomalous one in view.
        const peak = state.scores.reduce((best, r) => (!best || r.anomaly_score > best.anomaly_score ? r : best), null);
        state.chosenTs = peak ? peak.ts : null;
      }
      drawScoreChart();
      drawContributions();
      drawAlarms();
      drawMetrics();
      showProblem(null);
      view.dataset.loaded = `entity:${entity}`;
    } catch (error) {
      if (mine !== generation) return;
      showProblem(error);
    }
    // New steps arrive; but not while the operator brushes, labels a range, or turned it off.
    const again = () => {
      if (mine !== generation) return;
      if (state.selection || state.pointerDown || !state.following) {
        refreshTimer = setTimeout(again, 1000);
      } else {
        load();
      }
    };
    refreshTimer = setTimeout(again, entityRefreshMs(rangeMs));
  }
  load();
}

// ---- start -------------------------------------------------------------------------------------

document.getElementById("tenant").value = access.tenant;
document.getElementById("token").value = access.token;
document.getElementById("access").addEventListener("submit", (event) => {
  event.preventDefault();
  access.set(document.getElementById("tenant").value.trim(),
    document.getElementById("token").value.trim());
  showModel();
  route();
});
window.addEventListener("hashchange", route);
// A script error shows where the operator looks, not only in the console.
window.addEventListener("error", (event) => showProblem(event.error || event.message));
window.addEventListener("unhandledrejection", (event) => {
  // A request aborted by leaving its view is no problem.
  if (event.reason && event.reason.name === "AbortError") return;
  showProblem(event.reason);
});
window.addEventListener("securitypolicyviolation", (event) =>
  showProblem(`the page broke its own content security policy: ${event.violatedDirective}`));
showModel();
route();
