// What every dashboard page shares: the query API read with the session, a section's states
// (loading, ready, empty, error: tests and people both read them), tables and charts.
// Never swallows an error: a failed request is shown in its section, with the API's message.

const API = "/api/v1/analytics/admin/";
const pending = new Set();

/** The page's URL query: the state of its pickers. */
export const query = new URLSearchParams(window.location.search);

export class ApiError extends Error {}

/** GET an endpoint of the query API for this page's project and range, plus `extra`
 *  (an array value is a repeated parameter; empty values are left out). */
export async function api(path, extra = {}, { range = true } = {}) {
  const url = new URL(API + path, window.location.origin);
  url.searchParams.set("project_id", query.get("project_id"));
  if (range) {
    for (const name of ["after", "before"]) if (query.get(name)) url.searchParams.set(name, query.get(name));
  }
  for (const [name, value] of Object.entries(extra)) {
    for (const one of [].concat(value)) if (one !== null && one !== undefined && one !== "") url.searchParams.append(name, one);
  }
  return getJson(url);
}

/** GET a URL of the query API (e.g. a list's `next`), as JSON, or throw the API's error. */
export async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: said below */ }
  if (!response.ok) {
    const error = body && (body.error || body);
    const detail = error && error.message ? `${error.code || ""}${error.field ? ` (${error.field})` : ""}: ${error.message}` : "no JSON error body";
    throw new ApiError(`${new URL(url).pathname} answered ${response.status} ${detail}`);
  }
  if (body === null) throw new ApiError(`${new URL(url).pathname} answered ${response.status} without JSON`);
  return body;
}

/** Run `fill(section)` for the section with this id: its data-state says loading, then ready
 *  (or empty, when `fill` returns false), or error with the message shown in its alert. */
export function load(id, fill) {
  const section = document.getElementById(id);
  section.hidden = false;
  section.dataset.state = "loading";
  const job = (async () => {
    try {
      const filled = await fill(section);
      section.dataset.state = filled === false ? "empty" : "ready";
      const empty = section.querySelector(":scope > .empty");
      if (empty) empty.hidden = filled !== false;
    } catch (error) {
      section.dataset.state = "error";
      const alert = section.querySelector(":scope > .error");
      alert.textContent = String(error.message || error);
      alert.hidden = false;
      console.error(error);
    }
  })();
  pending.add(job);
  job.finally(() => {
    pending.delete(job);
    if (!pending.size) document.body.dataset.loaded = "true";
  });
  return job;
}

/** Fill a <table> from rows: columns are [heading, row => cell text or Node]. */
export function table(element, columns, rows) {
  element.replaceChildren();
  const head = element.createTHead().insertRow();
  for (const [heading] of columns) head.appendChild(document.createElement("th")).textContent = heading;
  const body = element.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [, cell] of columns) {
      const value = cell(row);
      const td = tr.insertCell();
      if (value instanceof Node) td.appendChild(value);
      else td.textContent = value === null || value === undefined ? "–" : String(value);
    }
  }
}

export function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

/** A page URL of this dashboard for the same project and range, plus `extra`. */
export function pageUrl(path, extra = {}) {
  const next = new URLSearchParams();
  for (const name of ["project_id", "after", "before"]) if (query.get(name)) next.set(name, query.get(name));
  for (const [name, value] of Object.entries(extra)) next.set(name, value);
  return `${path}?${next}`;
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c"];

/** A Chart.js chart on the canvas with this id (replacing one drawn before), without animation
 *  so that what a test or a screenshot reads is final. Reachable as Chart.getChart(canvas). */
export function chart(canvasId, type, labels, datasets, options = {}) {
  const canvas = document.getElementById(canvasId);
  window.Chart.getChart(canvas)?.destroy();
  return new window.Chart(canvas, {
    type,
    data: {
      labels,
      datasets: datasets.map((dataset, index) => ({
        borderColor: PALETTE[index % PALETTE.length],
        backgroundColor: PALETTE[index % PALETTE.length] + (type === "line" ? "33" : "cc"),
        ...dataset,
      })),
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, ...options, scales: countScales(options) },
  });
}

/** Counts start at zero in whole steps, on the value axis (x for a horizontal bar chart),
 *  merged into the scales a chart asks for (e.g. stacked). */
function countScales(options) {
  const scales = { x: {}, y: {}, ...options.scales };
  const value = options.indexAxis === "y" ? "x" : "y";
  scales[value] = { beginAtZero: true, ...scales[value], ticks: { precision: 0, ...scales[value].ticks } };
  return scales;
}

/** The UTC days [after's day, before) as "YYYY-MM-DD", for charts whose API omits empty days. */
export function days(after, before) {
  const out = [];
  const day = new Date(after);
  day.setUTCHours(0, 0, 0, 0);
  for (const end = new Date(before); day < end; day.setUTCDate(day.getUTCDate() + 1)) out.push(day.toISOString().slice(0, 10));
  return out;
}

export const dayOf = (iso) => iso.slice(0, 10);

export const number = (value) => (value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US"));

/** Fill a <select> with event types (most frequent first) from the top-events list, choosing
 *  the values the URL names; `data-any` adds a first, empty option with that label. */
export function fillEventSelect(select, eventTypes, chosen) {
  select.replaceChildren();
  if (select.dataset.any) select.add(new Option(select.dataset.any, ""));
  const known = new Set(eventTypes);
  for (const value of chosen) if (value && !known.has(value)) eventTypes = [...eventTypes, value];
  for (const eventType of eventTypes) select.add(new Option(eventType, eventType, false, chosen.includes(eventType)));
}

/** The project's event types, most frequent first, over the page's range. */
export async function eventTypes() {
  const answer = await api("events/event_counts/");
  return answer.results.map((row) => row.event_type);
}

/** Select the option of each named <select> that the URL names (the pickers keep their state). */
export function restoreChoices(...names) {
  for (const name of names) {
    const element = document.getElementById(name);
    if (!element || !query.has(name)) continue;
    if (element.type === "checkbox") element.checked = query.get(name) === element.value;
    else element.value = query.get(name);
  }
}

// The project picker opens the same page for the chosen project at once.
document.getElementById("project-picker")?.addEventListener("change", (event) => event.target.form.submit());
