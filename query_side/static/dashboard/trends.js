// Trends: one or more series (event types, or "$all") by interval, with math, breakdown and an
// optional comparison with the previous period. The series picker lists the top events.
import { api, chart, eventTypes, fillEventSelect, load, number, query, restoreChoices } from "./common.js";

const ALL = "$all";
restoreChoices("math", "interval", "breakdown", "compare");

load("trends", async () => {
  const chosen = query.getAll("series").filter(Boolean);
  const series = chosen.length ? chosen : [ALL];
  const select = document.getElementById("series");
  fillEventSelect(select, [ALL, ...(await eventTypes())], series);
  select.querySelector(`option[value="${ALL}"]`).textContent = "any event ($all)";
  const answer = await api("trends/", {
    series,
    math: query.get("math"),
    interval: query.get("interval"),
    breakdown: query.get("breakdown"),
    app_version: query.get("app_version"),
    os_name: query.get("os_name"),
    compare: query.get("compare"),
  });
  const name = (row) =>
    [row.event_type, row.math, row.breakdown_value, row.compare === "previous" ? "previous period" : null].filter((part) => part !== null).join(" · ");
  chart(
    "chart-trends",
    "line",
    answer.labels.map((label) => label.slice(0, answer.interval === "hour" ? 16 : 10).replace("T", " ")),
    answer.results.map((row) => ({ label: name(row), data: row.data, borderDash: row.compare === "previous" ? [6, 4] : undefined })),
  );
  const totals = document.getElementById("trends-totals");
  totals.replaceChildren();
  const head = totals.createTHead().insertRow();
  for (const heading of ["series", "total", "exact"]) head.appendChild(document.createElement("th")).textContent = heading;
  for (const row of answer.results) {
    const tr = totals.insertRow();
    tr.insertCell().textContent = name(row);
    tr.insertCell().textContent = number(row.total);
    tr.insertCell().textContent = row.exact ? "exact" : "estimate";
  }
  return answer.results.some((row) => row.data.some((value) => value));
});
