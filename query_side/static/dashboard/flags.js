// Flags: the project's flags (the query host's read of them) and, for the one picked, its
// exposures per day and variant and its users per variant, over the page's range.
import { api, chart, dayOf, days, link, load, number, pageUrl, query, table } from "./common.js";

load("flag-list", async () => {
  const answer = await api("flag-definitions/", { limit: 1000 }, { range: false });
  table(document.getElementById("flags"), [
    ["flag", (row) => link(pageUrl("/flags/", { flag: row.key }), row.key)],
    ["name", (row) => row.name],
    ["enabled", (row) => (row.enabled ? "on" : "off")],
    ["rollout", (row) => `${row.rollout_percentage}%`],
    ["variants", (row) => row.variants.join(", ") || "boolean"],
    ["version", (row) => row.version],
  ], answer.results);
  return answer.results.length > 0;
});

const flag = query.get("flag");
if (flag) {
  document.getElementById("flag-key").textContent = flag;
  load("exposures", async () => {
    const answer = await api(`feature-flags/${encodeURIComponent(flag)}/exposures/`);
    const labels = days(answer.after, answer.before);
    const variants = [...new Set(answer.days.map((row) => row.variant))].sort();
    chart("chart-exposures", "bar", labels, variants.map((variant) => ({
      label: variant,
      data: labels.map((day) => answer.days.find((row) => row.variant === variant && dayOf(row.day) === day)?.exposures ?? 0),
    })), { scales: { x: { stacked: true }, y: { stacked: true } } });
    table(document.getElementById("exposure-users"), [["variant", (row) => row.variant], ["users", (row) => number(row.users)]], [
      ...answer.users,
      { variant: "several variants (counted in none)", users: answer.users_with_several_variants },
    ]);
    return answer.days.length > 0 || answer.users.length > 0;
  });
}
