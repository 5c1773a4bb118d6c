"""Trends and retention (query_side/analytics.py) against the same questions asked of the raw
events in SQL, persons resolved through the people read model: every interval and math, a
breakdown's top values and "$other", property filters and breakdowns (the raw path), compare,
cohorts by first seen and by a first event, day and week grids; and the bounds."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.integration.test_query_api import get
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
TYPES = ("app_opened", "screen", "purchase", "share")
WINDOW = {"after": "2026-03-02T05:30:00Z", "before": "2026-03-13T17:10:00Z"}


def seed(project_id: int) -> None:
    """Three weeks of mixed events of 14 users, two of them one person ($identify)."""
    rng = random.Random(9)
    rows = []
    for user in range(14):
        first_day = rng.randrange(0, 12)
        for day in sorted(rng.sample(range(first_day, 21), rng.randrange(1, 8))):
            for _ in range(rng.randrange(1, 5)):
                moment = MONDAY + timedelta(days=day, hours=rng.randrange(24), minutes=rng.randrange(60))
                rows.append({
                    "project_id": project_id, "distinct_id": f"u{user}", "timestamp": moment,
                    "event_type": rng.choices(TYPES, weights=(8, 5, 2, 1))[0],
                    "app_version": rng.choice(("1.0", "1.1", "2.0", None)), "os_name": rng.choice(("iOS", "Android")),
                    "properties": {"plan": rng.choice(("free", "pro")), "price": rng.randrange(3)},
                })  # fmt: skip
    # u13 logs in as u12: one person from then on, and in the past too.
    rows.append({"project_id": project_id, "distinct_id": "u12", "event_type": "$identify",
                 "timestamp": MONDAY + timedelta(days=15), "properties": {"$anon_distinct_id": "u13"}})  # fmt: skip
    insert_events(rows)
    run_projections()


def sql(query: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


PERSON = "coalesce(pd.person_id::text, e.distinct_id)"
FROM_EVENTS = """FROM tidelog_events e
    LEFT JOIN rm_person_distinct_ids pd ON pd.project_id = e.project_id AND pd.distinct_id = e.distinct_id
    WHERE e.project_id = %(project_id)s AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s"""
START = datetime(2026, 3, 2, 5, tzinfo=UTC)  # WINDOW's hours: floor(after), ceil(before)
END = datetime(2026, 3, 13, 18, tzinfo=UTC)
MATH_SQL = {
    "total": "count(*)",
    "unique_users": f"count(DISTINCT {PERSON})",
}


def expected_series(project_id, interval, math, where="", extra=None):
    """{bucket: value} of one series from the raw events."""
    params = {"project_id": project_id, "start": START, "end": END, "interval": interval, **(extra or {})}
    if math in MATH_SQL:
        rows = sql(f"""SELECT date_trunc(%(interval)s, e."timestamp", 'UTC'), {MATH_SQL[math]} {FROM_EVENTS} {where}
                       GROUP BY 1""", params)  # fmt: skip
        return {bucket: value for bucket, value in rows}
    rows = sql(
        f"""SELECT bucket, sum(n), count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM (
                SELECT date_trunc(%(interval)s, e."timestamp", 'UTC') AS bucket, {PERSON} AS who, count(*) AS n
                {FROM_EVENTS} {where} GROUP BY 1, 2) p GROUP BY 1""",
        params,
    )
    if math == "per_user_avg":
        return {bucket: round(int(total) / users, 4) for bucket, total, users, _ in rows}
    return {bucket: median for bucket, _, _, median in rows}


def trends(client, project, **query):
    response = get(client, "trends/", project.personal_api_key, **{**WINDOW, **query})
    assert response.status_code == 200, response.content
    return response.json()


def as_dict(body, result):
    return {
        datetime.fromisoformat(label.replace("Z", "+00:00")): value
        for label, value in zip(body["labels"], result["data"], strict=True)
        if value
    }


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
@pytest.mark.parametrize("math", ["total", "unique_users", "per_user_avg", "per_user_median"])
@pytest.mark.parametrize("series", ["screen", "$all"])
def test_a_series_equals_the_raw_events_in_sql_for_every_interval_and_math(client, project, interval, math, series):
    """`$all`'s users by day or longer come from the active days, with the edge hours of the
    range (it starts and ends mid-day) from the hour rollups: the same answer."""
    seed(project.project_id)
    body = trends(client, project, series=series, math=math, interval=interval)
    [result] = body["results"]
    where = "" if series == "$all" else f"AND e.event_type = '{series}'"
    expected = expected_series(project.project_id, interval, math, where)
    assert as_dict(body, result) == {k: v for k, v in expected.items() if v}
    assert result["exact"] is True


def test_several_series_each_with_its_math_and_the_range_total_counts_each_person_once(client, project):
    seed(project.project_id)
    body = trends(client, project, series=["$all", "purchase"], math=["unique_users", "total"])
    first, second = body["results"]
    assert (first["event_type"], first["math"], second["event_type"], second["math"]) == (
        "$all", "unique_users", "purchase", "total")  # fmt: skip
    assert as_dict(body, first) == expected_series(project.project_id, "day", "unique_users")
    # Unique users over the whole range: not the sum of the days' (a person active on two days).
    [(whole,)] = sql(f"SELECT count(DISTINCT {PERSON}) {FROM_EVENTS}", {"project_id": project.project_id,
                     "start": START, "end": END})  # fmt: skip
    assert first["total"] == whole < sum(first["data"])
    assert second["total"] == sum(second["data"])


def test_the_merged_person_counts_once_in_the_past_too(client, project):
    seed(project.project_id)
    [(persons, ids)] = sql(
        f"""SELECT count(DISTINCT {PERSON}), count(DISTINCT e.distinct_id) {FROM_EVENTS}""",
        {"project_id": project.project_id, "start": MONDAY, "end": MONDAY + timedelta(days=30)},
    )
    body = trends(client, project, series="$all", math="unique_users", interval="month",
                  after="2026-03-01", before="2026-04-01")  # fmt: skip
    assert body["results"][0]["total"] == persons == ids - 1


def test_a_breakdown_keeps_the_top_values_and_sums_the_rest_as_other(client, project):
    seed(project.project_id)
    body = trends(client, project, series="$all", math="unique_users", breakdown="app_version", breakdown_limit=2)
    by_value = {result["breakdown_value"]: result for result in body["results"]}
    counts = dict(sql(f"SELECT coalesce(e.app_version, ''), count(*) {FROM_EVENTS} GROUP BY 1",
                      {"project_id": project.project_id, "start": START, "end": END}))  # fmt: skip
    top = sorted(counts, key=lambda value: (-counts[value], value))[:2]
    assert list(by_value) == [value or None for value in top] + ["$other"]
    rest = [value for value in counts if value not in top]
    other = expected_series(project.project_id, "day", "unique_users", "AND coalesce(e.app_version, '') = ANY(%(rest)s)",
                            {"rest": rest})  # fmt: skip
    assert as_dict(body, by_value["$other"]) == other
    for value in top:
        assert as_dict(body, by_value[value or None]) == expected_series(
            project.project_id, "day", "unique_users", "AND coalesce(e.app_version, '') = %(v)s", {"v": value}
        )


def test_filters_on_version_os_and_properties_equal_the_raw_events(client, project):
    seed(project.project_id)
    body = trends(client, project, series="$all", math="unique_users", os_name="iOS", property=["plan:pro", "price:2"])
    expected = expected_series(
        project.project_id, "day", "unique_users",
        """AND e.os_name = 'iOS' AND e.properties ->> 'plan' = 'pro' AND e.properties -> 'price' = '2'::jsonb""",
    )  # fmt: skip
    assert as_dict(body, body["results"][0]) == expected and expected


def test_a_breakdown_by_an_event_property(client, project):
    seed(project.project_id)
    body = trends(client, project, series="purchase", breakdown="property:plan")
    for result in body["results"]:
        assert as_dict(body, result) == expected_series(
            project.project_id, "day", "total", "AND e.event_type = 'purchase' AND e.properties ->> 'plan' = %(v)s",
            {"v": result["breakdown_value"]})  # fmt: skip
    plans = sql(f"SELECT DISTINCT e.properties ->> 'plan' {FROM_EVENTS} AND e.event_type = 'purchase'",
                {"project_id": project.project_id, "start": START, "end": END})  # fmt: skip
    assert {result["breakdown_value"] for result in body["results"]} == {plan for (plan,) in plans} != set()


def test_compare_adds_the_previous_period_aligned_by_position(client, project):
    seed(project.project_id)
    body = trends(client, project, series="$all", compare="previous", after="2026-03-09", before="2026-03-16")
    current, previous = body["results"]
    assert (current["compare"], previous["compare"]) == ("current", "previous")
    days = dict(sql(f"""SELECT date_trunc('day', e."timestamp", 'UTC'), count(*) {FROM_EVENTS} GROUP BY 1""",
                    {"project_id": project.project_id, "start": MONDAY, "end": MONDAY + timedelta(days=14)}))  # fmt: skip
    assert previous["data"] == [days.get(MONDAY + timedelta(days=i), 0) for i in range(7)]
    assert current["data"] == [days.get(MONDAY + timedelta(days=7 + i), 0) for i in range(7)]


def test_bounds_and_bad_parameters_are_400s_naming_the_field(client, project, settings, monkeypatch):
    seed(project.project_id)
    settings.TIDELOG_RAW_SCAN_MAX_EVENTS = 5
    monkeypatch.setattr("query_side.user_sets.MAX_POINTS", 60)

    def error(**query):
        response = get(client, "trends/", project.personal_api_key, **{**WINDOW, **query})
        assert response.status_code == 400, response.content
        body = response.json()
        return body["code"], body["field"]

    assert error(series="$all", property="plan:pro") == ("range_too_large", "after")
    assert error(series="$all", interval="hour", after="2020-01-01", before="2026-01-01") == ("range_too_large",
                                                                                                "interval")  # fmt: skip
    assert error(series="") == ("invalid_parameter", "series")
    # The answers' size bound: 61 hours, and an hourly breakdown of 12 days.
    assert error(series="$all", interval="hour", after="2026-03-02T00:00Z", before="2026-03-04T13:00Z") == (
        "range_too_large", "interval")  # fmt: skip
    response = get(
        client, "event-aggregates/", project.personal_api_key, interval="hour", breakdown="os_name", **WINDOW
    )
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "range_too_large", "interval")  # fmt: skip
    fits = get(client, "event-aggregates/", project.personal_api_key, event_type="share", **WINDOW)
    assert fits.status_code == 200 and 0 < len(fits.json()["results"]) <= 60
    assert error(series=["a"] * 11) == ("invalid_parameter", "series")
    assert error(series=["a", "b", "c"], math=["total", "total"]) == ("invalid_parameter", "math")
    assert error(series="a", math="mean") == ("invalid_parameter", "math")
    assert error(series="a", breakdown="country") == ("invalid_parameter", "breakdown")
    assert error(series="a", breakdown="property:") == ("invalid_parameter", "breakdown")
    assert error(series="a", breakdown="os_name", breakdown_limit="0") == ("invalid_parameter", "breakdown_limit")
    assert error(series="a", interval="year") == ("invalid_parameter", "interval")
    assert error(series="a", compare="next") == ("invalid_parameter", "compare")


# --- Retention ---------------------------------------------------------------------------------


def expected_retention(project_id, period, periods, cohort_event=None, return_event=None):
    """{cohort start: [size, returned in period 1, …]} from the raw events in SQL."""
    step = 7 if period == "week" else 1
    rows = sql(
        f"""WITH ev AS (
                SELECT {PERSON} AS who, e.event_type, (e."timestamp" AT TIME ZONE 'UTC')::date AS day
                FROM tidelog_events e
                LEFT JOIN rm_person_distinct_ids pd ON pd.project_id = e.project_id AND pd.distinct_id = e.distinct_id
                WHERE e.project_id = %(project_id)s),
            firsts AS (SELECT who, min(day) AS first_day FROM ev
                       WHERE %(cohort_event)s::text IS NULL OR event_type = %(cohort_event)s GROUP BY who),
            cohorts AS (SELECT who, date_trunc(%(period)s, first_day)::date AS cohort FROM firsts
                        WHERE first_day >= %(first)s AND first_day < %(last)s)
            SELECT c.cohort, 0, count(*) FROM cohorts c GROUP BY 1
            UNION ALL
            SELECT c.cohort, (date_trunc(%(period)s, r.day)::date - c.cohort) / %(step)s AS k, count(DISTINCT c.who)
            FROM cohorts c JOIN ev r ON r.who = c.who
            WHERE (%(return_event)s::text IS NULL OR r.event_type = %(return_event)s)
              AND r.day >= c.cohort + %(step)s AND r.day < c.cohort + %(step)s * %(periods)s
            GROUP BY 1, 2""",
        {"project_id": project_id, "cohort_event": cohort_event, "return_event": return_event, "period": period,
         "first": MONDAY.date(), "last": (MONDAY + timedelta(days=14)).date(), "step": step, "periods": periods},
    )  # fmt: skip
    grid: dict = {}
    for cohort, k, n in rows:
        grid.setdefault(cohort, [0] * periods)[k] = n
    return grid


@pytest.mark.parametrize(
    ("period", "periods", "cohort_event", "return_event"),
    [("day", 10, None, None), ("week", 3, None, None), ("day", 7, "purchase", None), ("week", 3, "share", "purchase")],
)
def test_retention_equals_the_cohorts_of_the_raw_events(client, project, period, periods, cohort_event, return_event):
    seed(project.project_id)
    query = {"period": period, "periods": periods, "after": "2026-03-02", "before": "2026-03-16"}
    if cohort_event:
        query["cohort_event"] = cohort_event
    if return_event:
        query["return_event"] = return_event
    response = get(client, "retention/", project.personal_api_key, **query)
    assert response.status_code == 200, response.content
    cohorts = response.json()["cohorts"]
    expected = expected_retention(project.project_id, period, periods, cohort_event, return_event)
    got = {datetime.fromisoformat(c["cohort"]).date(): c["returned"] for c in cohorts if c["size"]}
    assert got == {cohort: row for cohort, row in expected.items() if row[0]}
    assert all(c["size"] == c["returned"][0] for c in cohorts)
    assert len(cohorts) == (14 if period == "day" else 2)


def test_retention_periods_in_the_future_are_null(client, project):
    today = datetime.now(UTC).date()
    response = get(client, "retention/", project.personal_api_key, period="day", periods=5,
                   after=str(today - timedelta(days=1)))  # fmt: skip
    assert response.status_code == 200, response.content
    rows = [cohort["returned"] for cohort in response.json()["cohorts"]]
    assert rows == [[0, 0, None, None, None], [0, None, None, None, None]]


def test_retention_bad_parameters_are_400s_naming_the_field(client, project):
    for query, field in (({"period": "month"}, "period"), ({"periods": "61"}, "periods"),
                         ({"after": "2020-01-01", "before": "2026-01-01"}, "after")):  # fmt: skip
        response = get(client, "retention/", project.personal_api_key, **query)
        assert response.status_code == 400 and response.json()["field"] == field, response.content
