// Funnel: 2–10 ordered steps within a conversion window, each step's users, conversion and
// drop-off, optionally per app version or OS. The step pickers list the top events.
import { api, chart, eventTypes, fillEventSelect, load, number, query, restoreChoices, table } from "./common.js";

restoreChoices("window_hours", "breakdown");

const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`);
const seconds = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} s`);
const STEP_COLUMNS = [
  ["step", (step) => step.event_type],
  ["users", (step) => number(step.count)],
  ["conversion", (step) => percent(step.conversion)],
  ["from previous", (step) => percent(step.conversion_from_previous)],
  ["drop-off", (step) => number(step.drop_off)],
  ["median time to convert", (step) => seconds(step.median_seconds_to_convert)],
];

load("funnel", async () => {
  const steps = query.getAll("steps").filter(Boolean);
  const types = await eventTypes();
  document.querySelectorAll("select.step").forEach((select, index) => fillEventSelect(select, types, [steps[index]]));
  if (steps.length < 2) return false;
  const answer = await api("funnels/", { steps, window_hours: query.get("window_hours"), breakdown: query.get("breakdown") });
  chart("chart-funnel", "bar", answer.steps.map((step, index) => `${index + 1}. ${step.event_type}`), [
    { label: "users", data: answer.steps.map((step) => step.count) },
  ]);
  table(document.getElementById("funnel-steps"), STEP_COLUMNS, answer.steps);
  const breakdown = document.getElementById("funnel-breakdown");
  breakdown.replaceChildren();
  for (const group of answer.breakdown || []) {
    breakdown.appendChild(document.createElement("h3")).textContent = group.breakdown_value ?? "unknown";
    table(breakdown.appendChild(document.createElement("table")), STEP_COLUMNS, group.steps);
  }
  return true;
});
