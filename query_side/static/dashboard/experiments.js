// Experiments: the project's experiments and, for the one picked, each variant's exposed and
// converted users, conversion rate with its interval, uplift and significance, and the SRM check.
import { api, chart, link, load, number, pageUrl, query, table } from "./common.js";

load("experiment-list", async () => {
  const answer = await api("experiment-definitions/", { limit: 1000 }, { range: false });
  table(document.getElementById("experiments"), [
    ["experiment", (row) => link(pageUrl("/experiments/", { experiment: row.key }), row.key)],
    ["flag", (row) => row.flag_key],
    ["goal", (row) => row.goal_event],
    ["control / tests", (row) => [row.control, ...row.tests].join(" / ")],
    ["window", (row) => `${row.start_at.slice(0, 10)} → ${row.end_at ? row.end_at.slice(0, 10) : "open"}`],
    ["archived", (row) => (row.archived ? "yes" : "")],
  ], answer.results);
  return answer.results.length > 0;
});

const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`);
const key = query.get("experiment");
if (key) {
  document.getElementById("experiment-key").textContent = key;
  load("results", async () => {
    const answer = await api(`experiments/${encodeURIComponent(key)}/results/`, {}, { range: false });
    const variants = [answer.control, ...answer.tests];
    chart("chart-results", "bar", variants.map((variant) => variant.key), [
      { label: "conversion rate (%)", data: variants.map((variant) => (variant.rate === null ? null : variant.rate * 100)) },
    ]);
    table(document.getElementById("variant-results"), [
      ["variant", (row) => row.key],
      ["exposed", (row) => number(row.exposed)],
      ["converted", (row) => number(row.converted)],
      ["rate", (row) => percent(row.rate)],
      ["95% interval", (row) => `${percent(row.interval.low)} – ${percent(row.interval.high)}`],
      ["uplift", (row) => percent(row.uplift)],
      ["p-value", (row) => (row.p_value === null ? "–" : row.p_value.toFixed(4))],
      ["P(beats control)", (row) => percent(row.probability_to_beat_control)],
    ], variants);
    const srm = answer.srm;
    document.getElementById("srm").textContent = srm.srm_suspected
      ? `Sample ratio mismatch suspected (p = ${srm.p_value}): check how exposures are logged before trusting these results.`
      : `No sample ratio mismatch (p = ${srm.p_value ?? "–"}). Users seen with several variants, left out: ${answer.users_with_several_variants}.`;
  });
}
