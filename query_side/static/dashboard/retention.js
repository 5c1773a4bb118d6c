// Retention: cohorts (by first seen or a first event) and the share of each active in the
// periods after, as a grid whose cells are shaded by that share.
import { api, eventTypes, fillEventSelect, load, query, restoreChoices } from "./common.js";

restoreChoices("period", "periods");

load("retention", async () => {
  const types = await eventTypes();
  fillEventSelect(document.getElementById("cohort_event"), types, [query.get("cohort_event")]);
  fillEventSelect(document.getElementById("return_event"), types, [query.get("return_event")]);
  const answer = await api("retention/", {
    period: query.get("period"),
    cohort_event: query.get("cohort_event"),
    return_event: query.get("return_event"),
    periods: query.get("periods"),
  });
  const grid = document.getElementById("retention-grid");
  grid.replaceChildren();
  const columns = Math.max(0, ...answer.cohorts.map((cohort) => cohort.returned.length));
  const head = grid.createTHead().insertRow();
  for (const heading of ["cohort", "users", ...Array.from({ length: columns }, (_, k) => `${answer.period} ${k}`)]) {
    head.appendChild(document.createElement("th")).textContent = heading;
  }
  const body = grid.createTBody();
  for (const cohort of answer.cohorts) {
    const tr = body.insertRow();
    tr.dataset.cohort = cohort.cohort;
    tr.insertCell().textContent = cohort.cohort;
    tr.insertCell().textContent = cohort.size;
    for (const returned of cohort.returned) {
      const td = tr.insertCell();
      if (returned === null) continue; // a period still in the future
      const share = cohort.size ? returned / cohort.size : 0;
      td.textContent = `${Math.round(share * 100)}%`;
      td.title = `${returned} of ${cohort.size}`;
      td.dataset.returned = returned;
      td.style.background = `rgba(37, 99, 235, ${0.08 + 0.8 * share})`;
      if (share > 0.5) td.style.color = "white";
    }
  }
  return answer.cohorts.length > 0;
});
