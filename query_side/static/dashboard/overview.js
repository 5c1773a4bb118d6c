// Overview: events, active users, sessions, top events and bad events over the page's range.
import { api, chart, dayOf, days, getJson, load, number } from "./common.js";

const counts = api("events/event_counts/");

load("tiles", async () => {
  const [events, sessions] = await Promise.all([counts, api("session-metrics/", { interval: "day" })]);
  document.getElementById("tile-events").textContent = number(events.results.reduce((sum, row) => sum + row.count, 0));
  document.getElementById("tile-sessions").textContent = number(sessions.results.reduce((sum, row) => sum + row.sessions, 0));
  document.getElementById("empty-events").hidden = events.results.length > 0;
});

load("events", async () => {
  // Events per day are a trend of every event's total: sums of the rollups' counts, no sets read.
  const answer = await api("trends/", { series: "$all", math: "total", interval: "day" });
  const [all] = answer.results;
  const labels = days(answer.after, answer.before);
  const perDay = new Map(answer.labels.map((bucket, index) => [dayOf(bucket), all.data[index]]));
  chart("chart-events", "bar", labels, [{ label: "events", data: labels.map((day) => perDay.get(day) ?? 0) }]);
  return all.total > 0;
});

load("active", async () => {
  const [dau, wau, mau] = await Promise.all(["day", "week", "month"].map((interval) => api("active-users/", { interval })));
  const labels = days(dau.after, dau.before);
  // A week or month that starts before the range is drawn on the range's first day.
  const at = (answer) => {
    const values = labels.map(() => null);
    for (const row of answer.results) {
      const index = Math.max(0, labels.indexOf(dayOf(row.bucket)));
      values[index] = row.active_users;
    }
    return values;
  };
  chart("chart-active", "line", labels, [
    { label: "DAU", data: labels.map((day) => dau.results.find((row) => dayOf(row.bucket) === day)?.active_users ?? 0) },
    { label: "WAU", data: at(wau), spanGaps: true, stepped: true },
    { label: "MAU", data: at(mau), spanGaps: true, stepped: true },
  ]);
  return dau.results.length > 0;
});

load("sessions", async () => {
  const answer = await api("session-metrics/", { interval: "day" });
  const labels = days(answer.after, answer.before);
  chart("chart-sessions", "bar", labels, [
    { label: "sessions", data: labels.map((day) => answer.results.find((row) => dayOf(row.bucket) === day)?.sessions ?? 0) },
  ]);
  return answer.results.length > 0;
});

load("top-events", async () => {
  const top = (await counts).results.slice(0, 10);
  chart("chart-top-events", "bar", top.map((row) => row.event_type), [{ label: "events", data: top.map((row) => row.count) }], {
    indexAxis: "y",
  });
  return top.length > 0;
});

// TRICKY: admin/bad-events/ has no range filter: it lists newest first, so read pages until one
// reaches past the range's start (at most 10 pages of 1,000), and count the days in the range.
load("bad-events", async () => {
  const range = await counts; // its after/before: the range the API resolved (defaults included)
  const labels = days(range.after, range.before);
  const perDay = new Map(labels.map((day) => [day, 0]));
  const [after, before] = [Date.parse(range.after), Date.parse(range.before)];
  let answer = await api("bad-events/", { limit: 1000 }, { range: false });
  for (let pages = 1; ; pages += 1) {
    for (const row of answer.results) {
      const at = Date.parse(row.received_at);
      if (at >= after && at < before) perDay.set(dayOf(row.received_at), perDay.get(dayOf(row.received_at)) + 1);
    }
    const last = answer.results.at(-1);
    if (!answer.next || !last || Date.parse(last.received_at) < after) break;
    if (pages === 10) {
      document.getElementById("bad-events-note").textContent = "Counted from the newest 10,000 bad events only.";
      break;
    }
    answer = await getJson(answer.next);
  }
  const total = [...perDay.values()].reduce((sum, n) => sum + n, 0);
  document.getElementById("tile-bad-events").textContent = number(total);
  chart("chart-bad-events", "bar", labels, [{ label: "bad events", data: labels.map((day) => perDay.get(day)) }]);
  if (!total) document.getElementById("bad-events-note").textContent = "No bad events in this range: every event sent was valid.";
  return true;
});
