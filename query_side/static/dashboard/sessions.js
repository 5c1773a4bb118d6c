// Sessions: newest first, started in the page's range (the last 7 days when none is picked),
// each linking to its timeline; "More" follows the list's cursor.
import { api, getJson, link, load, number, pageUrl, query, table } from "./common.js";

const COLUMNS = [
  ["session", (row) => link(pageUrl(`/sessions/${encodeURIComponent(row.session_id)}/`), row.session_id)],
  ["person", (row) => row.distinct_id],
  ["start (UTC)", (row) => row.start.slice(0, 19).replace("T", " ")],
  ["duration", (row) => `${Math.round(row.duration_seconds)} s`],
  ["events", (row) => number(row.event_count)],
  ["screens", (row) => number(row.screen_count)],
  ["app", (row) => [row.app_version, row.os_name].filter(Boolean).join(" · ") || null],
  ["ended by", (row) => (row.active ? "active" : row.ended_by)],
];

load("sessions", async (section) => {
  const week = new Date(Date.now() - 7 * 86400e3).toISOString();
  let answer = await api("sessions/", {
    after: query.get("after") ? null : week,
    distinct_id: query.get("distinct_id"),
    limit: 50,
  });
  const rows = [...answer.results];
  const more = document.getElementById("more");
  const draw = () => {
    table(document.getElementById("session-list"), COLUMNS, rows);
    more.hidden = !answer.next;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      answer = await getJson(answer.next);
      rows.push(...answer.results);
      draw();
    } catch (error) {
      const alert = section.querySelector(":scope > .error");
      alert.textContent = error.message;
      alert.hidden = false;
    } finally {
      more.disabled = false;
    }
  });
  draw();
  return rows.length > 0;
});
