// One session: its fields and its events, oldest first ("More" for the next page).
import { api, getJson, load, table } from "./common.js";

const EVENT_COLUMNS = [
  ["time (UTC)", (row) => row.timestamp.slice(0, 23).replace("T", " ")],
  ["event", (row) => row.event_type],
  ["distinct_id", (row) => row.distinct_id],
  ["screen", (row) => row.properties?.$screen_name ?? null],
  ["properties", (row) => JSON.stringify(row.properties)],
];
const FIELDS = ["distinct_id", "person_id", "start", "end", "duration_seconds", "event_count", "screen_count",
  "app_version", "os_name", "os_version", "device_id", "ended_by", "active", "inferred"];

load("session", async (section) => {
  const id = section.dataset.sessionId;
  let answer = await api(`sessions/${encodeURIComponent(id)}/`, { limit: 200 }, { range: false });
  const fields = document.getElementById("session-fields");
  fields.replaceChildren();
  for (const name of FIELDS) {
    fields.appendChild(document.createElement("dt")).textContent = name;
    const value = fields.appendChild(document.createElement("dd"));
    value.textContent = answer[name] === null ? "–" : String(answer[name]);
    value.dataset.field = name;
  }
  const events = [...answer.events];
  const more = document.getElementById("more");
  const draw = () => {
    table(document.getElementById("session-events"), EVENT_COLUMNS, events);
    more.hidden = !answer.next;
  };
  more.addEventListener("click", async () => {
    answer = await getJson(answer.next);
    events.push(...answer.events);
    draw();
  });
  draw();
});
