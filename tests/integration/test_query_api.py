"""The query API over HTTP: results, filters, pagination, validation, authentication, query
counts, and that a project's data is never visible to another project's key.
(What each selector computes is pinned in test_query_selectors.py.)"""

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from contracts import schema
from projections import person_cohorts, session_durations
from projections.people import bump_alias_versions
from projections.user_numbers import numbers_of
from tenancy.models import PersonalAPIKey
from tests.projection_helpers import insert_events, write_as_projected

pytestmark = pytest.mark.django_db
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
BASE = "/api/v1/analytics/admin/"
# URL namespaces of the query root that are not the query API, and why they are left out.
NOT_THE_API = {
    "admin": "the Django admin: staff sessions only, tested in test_admin_and_commands.py",
    "schema": "the OpenAPI schema and Swagger UI: public, no project's data, tested in test_openapi.py",
    "dashboard": "the dashboard's pages: tested in test_dashboard_access.py and tests/browser/",
    "observability": "/healthz, /readyz and /metrics: no project's data, tested in test_observability.py",
}
# The flag and experiment every seed below makes, and the routes' sample for their `{key}`.
SAMPLE_KEY = "sample-key"
# The session and person seed_sessions_and_people makes, and their routes' samples.
SAMPLE_SESSION = "sample-session"
SAMPLE_PERSON = "00000000-0000-4000-8000-00000000a11c"
SAMPLES = {"key": SAMPLE_KEY, "session_id": SAMPLE_SESSION, "person_id": SAMPLE_PERSON}
"""A sample value for each route parameter: the route tests build every URL from the URLconf."""
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def with_samples(route: str) -> str:
    """`admin/experiments/<str:key>/results/` with SAMPLES' values in place of its parameters."""
    return _PARAMETER.sub(lambda match: SAMPLES[match[1]], route)


def query_routes() -> dict[str, str]:
    """Every route of the query API, by name, walked from its URL root: a route added later is
    in every test below without anyone listing it. A parameter takes its value from SAMPLES."""
    routes: dict[str, str] = {}

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace not in NOT_THE_API:
                    walk(entry.url_patterns, prefix + str(entry.pattern))
                continue
            route = prefix + str(entry.pattern)
            assert isinstance(entry.pattern, RoutePattern) and set(entry.pattern.converters) <= set(SAMPLES), (
                f"{route}: give the route tests a sample value for its parameters (SAMPLES)"
            )
            assert entry.name, f"{route} has no name"
            routes[entry.name] = "/" + with_samples(route)
            PARAMETERS[entry.name] = {name: SAMPLES[name] for name in entry.pattern.converters}

    walk(get_resolver("core.urls_query").url_patterns, "")
    return routes


PARAMETERS: dict[str, dict[str, str]] = {}
"""Each route's parameters, by route name, with their sample values (for reverse())."""
ROUTES = query_routes()
ENDPOINTS = [path.removeprefix(BASE) for path in ROUTES.values()]
# What a route answers of a project's data, for the tenant-isolation tests: a list's results by
# default; these routes answer one flag or experiment.
ANSWERED_ROWS = {
    "flag-exposures": lambda body: body["days"] + body["users"],
    "experiment-results": lambda body: [v for v in (body["control"], *body["tests"]) if v["exposed"]],
    "trends": lambda body: [result for result in body["results"] if result["total"]],
    "retention": lambda body: [cohort for cohort in body["cohorts"] if cohort["size"]],
}
# Routes of one object a project may lack (not a definition seed_definitions makes): that
# project's key is answered 404, which shows none of another project's rows either.
ABSENT_IS_404 = {"session-detail", "person-detail"}
# The pickers' lists: every project in these tests has the sample definitions (seed_definitions),
# which are nobody else's data; seed_everything adds definitions of the project's own.
ANSWERED_ROWS["flag-definitions"] = lambda body: [row for row in body["results"] if row["key"] != SAMPLE_KEY]
ANSWERED_ROWS["experiment-definitions"] = ANSWERED_ROWS["flag-definitions"]
ANSWERED_ROWS["session-detail"] = lambda body: body["events"]
ANSWERED_ROWS["person-detail"] = lambda body: body["distinct_ids"] + body["sessions"] + body["identity_links"]
ANSWERED_ROWS["funnels"] = lambda body: [step for step in body["steps"] if step["count"]]
ROUTE_NAMES = {path.removeprefix(BASE): name for name, path in ROUTES.items()}
# The event (with one property) every seed below makes, and the queries of the routes that need
# parameters to answer anything: they ask about it.
SAMPLE_EVENT = "sample_event"
SAMPLE_QUERIES = {
    "funnels/": {"steps": [SAMPLE_EVENT, SAMPLE_EVENT]},
    "event-properties/": {"event_type": SAMPLE_EVENT},
    "event-property-values/": {"event_type": SAMPLE_EVENT, "key": "plan"},
}
LISTS = [ROUTES["event-list"].removeprefix(BASE), ROUTES["bad-events"].removeprefix(BASE)]
FIXED = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, for tests that name their range


def get(client, path, key=None, /, **query):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(BASE + path, query, **headers)


def seed(project_id, event_type="app_opened", users=("u1", "u2"), hours=(0,), app_version="1.0", start=None):
    """Read-model rows for `users` in each hour after `start` (default: five hours ago), two
    events each, as the projections write them."""
    start = start or HOUR
    write_as_projected(
        [
            {"project_id": project_id, "event_type": event_type, "distinct_id": user,
             "timestamp": start + timedelta(hours=hour), "app_version": app_version, "os_name": "iOS"}
            for hour in hours for user in users for _ in range(2)
        ]
    )  # fmt: skip


def seed_bad(project_id, count):
    with connection.cursor() as cursor:
        for i in range(count):
            cursor.execute(
                "INSERT INTO tidelog_bad_events (project_id, received_at, error_code, field, message, payload)"
                " VALUES (%s, %s, 'missing_field', 'distinct_id', 'm', %s)",
                [project_id, HOUR, f'{{"n": {i}}}'],
            )


def seed_flag(project_id, key=SAMPLE_KEY, variants=(("control", 50), ("test", 50)), rollout_percentage=100.0):
    """A flag row as the command side keeps it (FLAG_DEFINITIONS); variants () for a boolean."""
    definition = {
        "key": key, "enabled": True, "rollout_percentage": rollout_percentage,
        "variants": [{"key": variant, "rollout_percentage": share} for variant, share in variants],
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tidelog_flag_definitions (aggregate_id, project_id, key, name, description, version,"
            " definition, enabled, archived, created_by, created_at, updated_by, updated_at)"
            " VALUES (gen_random_uuid(), %s, %s, '', '', 1, %s::jsonb, true, false, '', now(), '', now())",
            [project_id, key, json.dumps(definition)],
        )


def seed_experiment(
    project_id, start_at, end_at=None, key=SAMPLE_KEY, flag_key=SAMPLE_KEY, control="control", tests=("test",)
):
    """An experiment row (EXPERIMENTS); its id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tidelog_experiments (project_id, key, name, description, flag_key, control, tests,"
            " goal_event, goal_filter, start_at, end_at, archived, created_by, created_at, updated_at)"
            " VALUES (%s, %s, '', '', %s, %s, %s, 'purchase', NULL, %s, %s, false, '', now(), now()) RETURNING id",
            [project_id, key, flag_key, control, list(tests), start_at, end_at],
        )
        return cursor.fetchone()[0]


def seed_exposure(project_id, user, variant, first_at, variants=None, flag_key=SAMPLE_KEY, exposures=1):
    """A user's row of FLAG_EXPOSURES: first seen with `variant` at `first_at`, and `variants`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_flag_exposures VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [project_id, flag_key, user, variant, first_at, sorted(variants or [variant]), exposures],
        )


def seed_exposure_day(project_id, day, variant, exposures, flag_key=SAMPLE_KEY):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_flag_exposure_days VALUES (%s, %s, %s, %s, %s)",
            [project_id, flag_key, day, variant, exposures],
        )


def seed_conversion(project_id, experiment_id, user, at):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_experiment_conversions VALUES (%s, %s, %s, %s)", [project_id, experiment_id, user, at]
        )


def staff_client(client):
    client.force_login(get_user_model().objects.create_user("staff", password="x", is_staff=True, is_superuser=True))
    return client


def seed_everything(project_id, user="u1", event_type="app_opened"):
    """One row in every table the query API reads, inside every endpoint's default range."""
    seed(project_id, event_type, users=(user,))
    seed_bad(project_id, 1)
    insert_events([{"project_id": project_id, "timestamp": HOUR, "distinct_id": user, "event_type": event_type}])
    seed_sample_event(project_id, user)
    seed_flag_data(project_id, user)
    seed_flag(project_id, key=f"{event_type}-flag")
    seed_experiment(project_id, HOUR, key=f"{event_type}-experiment", flag_key=f"{event_type}-flag")
    seed_sessions_and_people(project_id, user)


def seed_sample_event(project_id, user="u1"):
    """SAMPLE_EVENT with {"plan": "pro"}: a raw event (for funnels) and the event properties
    read model's rows for it, as its projection writes them."""
    insert_events([{"project_id": project_id, "timestamp": HOUR, "distinct_id": user, "event_type": SAMPLE_EVENT,
                    "properties": {"plan": "pro"}}])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_event_property_keys VALUES (%s, %s, 'plan', 1, false)", [project_id, SAMPLE_EVENT]
        )
        cursor.execute(
            """INSERT INTO rm_event_property_values VALUES (%s, %s, 'plan', '"pro"', 1)""", [project_id, SAMPLE_EVENT]
        )


def seed_session(project_id, session_id=SAMPLE_SESSION, distinct_id="u1", start=None, minutes=10, **columns):
    """An rm_sessions row as the sessions projection writes it ('' for unknown), `minutes` long,
    with its share of the duration histograms."""
    start = start or HOUR
    row = {
        "inferred": False, "device_id": "", "app_version": "1.0", "os_name": "iOS", "os_version": "17.1",
        "event_count": 2, "screen_count": 1, "first_event": "$session_start", "last_event": "$session_end",
        "ended_by": "explicit", **columns,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_sessions (project_id, session_id, inferred, distinct_id, device_id, app_version, os_name,"
            " os_version, start_at, end_at, event_count, screen_count, first_event, last_event, ended_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                project_id, session_id, row["inferred"], distinct_id, row["device_id"], row["app_version"],
                row["os_name"], row["os_version"], start, start + timedelta(minutes=minutes), row["event_count"],
                row["screen_count"], row["first_event"], row["last_event"], row["ended_by"],
            ],
        )  # fmt: skip
        session_durations.shift(cursor, "rm_sessions", "rm_session_durations", {(project_id, session_id)}, 1)


ALIAS_VERSIONS = {schema.PERSON_ALIAS_VERSIONS.name: schema.PERSON_ALIAS_VERSIONS.name}


def seed_person(project_id, person_id=SAMPLE_PERSON, distinct_ids=("u1",), properties=None, last_seen=None, **columns):
    """An rm_persons row and its rm_person_distinct_ids rows, as the people projection writes
    them; the ids were first seen a minute apart, in the order given."""
    last_seen = last_seen or HOUR
    first_seen = columns.get("first_seen", last_seen - timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_persons (project_id, person_id, is_identified, properties, first_seen, last_seen,"
            " event_count, distinct_id_count) VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
            [
                project_id, person_id, columns.get("is_identified", False), json.dumps(properties or {}),
                first_seen, last_seen, columns.get("event_count", 3), len(distinct_ids),
            ],
        )  # fmt: skip
        for index, distinct_id in enumerate(distinct_ids):
            cursor.execute(
                "INSERT INTO rm_person_distinct_ids (project_id, distinct_id, person_id, first_seen, last_seen,"
                " event_count) VALUES (%s, %s, %s, %s, %s, 1)",
                [project_id, distinct_id, person_id, first_seen + timedelta(minutes=index), last_seen],
            )
        # Its number and its ids' aliases, as recompute_persons writes them (no id identified: the
        # smallest number is the person's).
        numbers = sorted(numbers_of(cursor, [(project_id, distinct_id) for distinct_id in distinct_ids]).values())
        cursor.execute(
            "UPDATE rm_persons SET number = %s WHERE project_id = %s AND person_id = %s",
            [numbers[0], project_id, person_id],
        )
        for number in numbers[1:]:
            cursor.execute("INSERT INTO rm_person_aliases VALUES (%s, %s, %s)", [project_id, number, numbers[0]])
        if numbers[1:]:
            cursor.execute(bump_alias_versions(ALIAS_VERSIONS, "SELECT %s::int8 AS project_id"), [project_id])
        # And its cohort: the day it was first seen.
        person_cohorts.move(cursor, "rm_person_cohorts", left=[], taken=[(project_id, first_seen.date(), numbers[0])])


def insert_session_events(rows):
    """insert_events, and each row's `device_id` (which insert_events leaves null)."""
    rows = [{"uuid": uuid.uuid4(), **row} for row in rows]
    insert_events(rows)
    with connection.cursor() as cursor:
        for row in rows:
            if row.get("device_id") is not None:
                cursor.execute(
                    "UPDATE tidelog_events SET device_id = %s WHERE uuid = %s", [row["device_id"], row["uuid"]]
                )


def seed_sessions_and_people(project_id, user="u1"):
    """The sample session (explicit, started five hours ago) with one event of `user`, and the
    sample person who has `user`."""
    seed_session(project_id, distinct_id=user)
    insert_session_events(
        [{"project_id": project_id, "timestamp": HOUR + timedelta(minutes=1), "distinct_id": user,
          "session_id": SAMPLE_SESSION, "event_type": "$screen"}]
    )  # fmt: skip
    seed_person(project_id, distinct_ids=(user,))


def seed_flag_data(project_id, user="u1"):
    """The sample flag and experiment, `user` exposed to control an hour ago and converted."""
    experiment_id = seed_definitions(project_id)
    seed_exposure(project_id, user, "control", HOUR)
    seed_exposure_day(project_id, HOUR.date(), "control", 1)
    seed_conversion(project_id, experiment_id, user, HOUR + timedelta(minutes=1))


def seed_definitions(project_id):
    """The sample flag and its experiment (SAMPLE_KEY), with no exposures: the routes of one flag
    or experiment then answer this project 200, with nothing in it. The experiment's id."""
    seed_flag(project_id)
    return seed_experiment(project_id, start_at=HOUR - timedelta(days=1))


def answered_rows(path, response):
    """What `path` answered of a project's data (see ANSWERED_ROWS, ABSENT_IS_404)."""
    if ROUTE_NAMES[path] in ABSENT_IS_404 and response.status_code == 404:
        assert response.json()["code"] == "not_found"
        return []
    assert response.status_code == 200, response.content
    return ANSWERED_ROWS.get(ROUTE_NAMES[path], lambda body: body["results"])(response.json())


# --- events/ -------------------------------------------------------------------------------


def test_the_event_list_gives_every_field_with_utc_times(client, project):
    insert_events([{"project_id": project.project_id, "timestamp": HOUR, "app_version": "1.2", "os_name": "iOS"}])
    [row] = get(client, "events/", project.personal_api_key).json()["results"]
    assert set(row) == {
        "uuid", "event_type", "distinct_id", "timestamp", "received_at", "client_timestamp", "sent_at",
        "skew_ms", "session_id", "device_id", "app_version", "os_name", "os_version", "properties",
    }  # fmt: skip
    assert row["timestamp"] == HOUR.isoformat().replace("+00:00", "Z")
    assert (row["app_version"], row["os_name"], row["properties"]) == ("1.2", "iOS", {})


def test_the_event_list_filters_and_walks_every_event_once_across_pages(client, project):
    same_time = HOUR + timedelta(minutes=5)
    insert_events(
        [{"project_id": project.project_id, "timestamp": same_time, "distinct_id": f"u{i % 2}"} for i in range(7)]
        + [{"project_id": project.project_id, "timestamp": HOUR, "event_type": "other"}]
    )
    seen, url, pages = [], BASE + "events/?limit=3", 0
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
        seen += [row["uuid"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert len(seen) == len(set(seen)) == 8
    assert pages == 3
    only_u1 = get(client, "events/", project.personal_api_key, distinct_id="u1", event_type="e").json()["results"]
    assert len(only_u1) == 3 and {r["distinct_id"] for r in only_u1} == {"u1"}
    ranged = get(client, "events/", project.personal_api_key, before=(HOUR + timedelta(minutes=1)).isoformat()).json()
    assert [r["event_type"] for r in ranged["results"]] == ["other"]


def test_the_next_link_keeps_the_filters(client, project):
    insert_events([{"project_id": project.project_id, "timestamp": HOUR, "distinct_id": f"u{i % 2}"} for i in range(6)])
    first = get(client, "events/", project.personal_api_key, distinct_id="u1", limit=2).json()
    assert first["next"].startswith("http://testserver" + BASE + "events/?")
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
    assert {r["distinct_id"] for r in first["results"] + second["results"]} == {"u1"}
    assert len(second["results"]) == 1 and second["next"] is None


def test_the_event_list_has_no_default_range(client, project):
    insert_events([{"project_id": project.project_id, "timestamp": HOUR - timedelta(days=30)}])
    assert len(get(client, "events/", project.personal_api_key).json()["results"]) == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert get(client, "events/", project.personal_api_key, after=future).json()["results"] == []


def test_the_event_list_is_one_query_after_authentication(client, project, django_assert_num_queries):
    insert_events([{"project_id": project.project_id, "timestamp": HOUR}])
    with django_assert_num_queries(3):  # the key lookup, its first-use last_used_at, the events
        assert get(client, "events/", project.personal_api_key).status_code == 200
    with django_assert_num_queries(2):  # then, for a minute, the key lookup and the events
        assert get(client, "events/", project.personal_api_key).status_code == 200


def test_the_bad_event_list_is_one_query_after_authentication(client, project, django_assert_num_queries):
    seed_bad(project.project_id, 3)
    get(client, "bad-events/", project.personal_api_key)
    with django_assert_num_queries(2):
        assert len(get(client, "bad-events/", project.personal_api_key, limit=2).json()["results"]) == 2


def test_a_staff_read_costs_the_session_the_user_and_the_project(client, project, django_assert_num_queries):
    staff_client(client)
    with django_assert_num_queries(4):  # session, user, project exists, events
        assert get(client, "events/", project_id=project.project_id).status_code == 200


# --- events/event_counts/ ------------------------------------------------------------------


def test_event_counts_sum_per_type(client, project):
    seed(project.project_id, "app_opened")
    seed(project.project_id, "purchase", users=("u1",))
    response = get(client, "events/event_counts/", project.personal_api_key)
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"event_type": "app_opened", "count": 4},
        {"event_type": "purchase", "count": 2},
    ]


def test_event_counts_default_to_the_last_seven_days(client, project):
    seed(project.project_id, "recent")
    seed(project.project_id, "old", start=HOUR - timedelta(days=8))
    body = get(client, "events/event_counts/", project.personal_api_key).json()
    assert [r["event_type"] for r in body["results"]] == ["recent"]
    after, before = datetime.fromisoformat(body["after"]), datetime.fromisoformat(body["before"])
    assert before - after == timedelta(days=7)
    assert abs(before - datetime.now(UTC)) < timedelta(minutes=1)


def test_event_counts_respect_the_range(client, project):
    seed(project.project_id, hours=(0, 3))
    response = get(client, "events/event_counts/", project.personal_api_key,
                   after=(HOUR + timedelta(hours=1)).isoformat(), before=(HOUR + timedelta(hours=4)).isoformat())  # fmt: skip
    assert response.json()["results"] == [{"event_type": "app_opened", "count": 4}]


def test_the_range_is_echoed_in_utc(client, project):
    body = get(client, "events/event_counts/", project.personal_api_key,
               after="2026-03-02T10:00:00+02:00", before="2026-03-02T12:00:00-01:00").json()  # fmt: skip
    assert (body["after"], body["before"]) == ("2026-03-02T08:00:00Z", "2026-03-02T13:00:00Z")


# --- event-aggregates/ ---------------------------------------------------------------------


def test_aggregates_give_counts_and_unique_users_per_hour_and_day(client, project):
    seed(project.project_id, hours=(0, 1), start=FIXED + timedelta(hours=10))
    seed(project.project_id, users=("u3",), hours=(1,), start=FIXED + timedelta(hours=10))
    window = {"after": FIXED.isoformat(), "before": (FIXED + timedelta(days=1)).isoformat()}
    hourly = get(client, "event-aggregates/", project.personal_api_key, interval="hour", **window).json()
    assert hourly["interval"] == "hour"
    assert [(r["bucket"], r["count"], r["unique_users"]) for r in hourly["results"]] == [
        ("2026-03-02T10:00:00Z", 4, 2),
        ("2026-03-02T11:00:00Z", 6, 3),
    ]
    daily = get(client, "event-aggregates/", project.personal_api_key, interval="day", **window).json()
    # u1 and u2 are in both hours: three unique users over the day, not five.
    assert daily["results"] == [
        {"bucket": "2026-03-02T00:00:00Z", "event_type": "app_opened", "count": 10, "unique_users": 3}
    ]


def test_aggregates_default_to_daily_over_the_last_seven_days(client, project):
    seed(project.project_id)
    seed(project.project_id, "old", start=HOUR - timedelta(days=8))
    body = get(client, "event-aggregates/", project.personal_api_key).json()
    assert body["interval"] == "day"
    assert [(r["event_type"], r["count"]) for r in body["results"]] == [("app_opened", 4)]


def test_aggregates_break_down_by_app_version(client, project):
    seed(project.project_id, users=("u1",), app_version="1.0")
    seed(project.project_id, users=("u1", "u2"), app_version="2.0")
    rows = get(client, "event-aggregates/", project.personal_api_key, interval="hour", breakdown="app_version").json()[
        "results"
    ]
    assert {(r["app_version"], r["count"], r["unique_users"]) for r in rows} == {("1.0", 2, 1), ("2.0", 4, 2)}


def test_aggregates_break_down_by_os_and_filter_by_event_type(client, project):
    seed(project.project_id, "app_opened")
    seed(project.project_id, "purchase", users=("u1",))
    rows = get(
        client, "event-aggregates/", project.personal_api_key, breakdown="os_name", event_type="purchase"
    ).json()["results"]
    assert [(r["event_type"], r["os_name"], r["count"], r["unique_users"]) for r in rows] == [("purchase", "iOS", 2, 1)]


# --- active-users/ -------------------------------------------------------------------------


def test_active_users_count_distinct_users_per_day(client, project):
    seed(project.project_id, users=("u1", "u2", "u3"))
    rows = get(client, "active-users/", project.personal_api_key, interval="day").json()["results"]
    assert [r["active_users"] for r in rows] == [3]


def test_active_users_per_week_and_month(client, project):
    seed(project.project_id, users=("u1", "u2"), start=FIXED - timedelta(days=1))  # Sunday 1 March
    seed(project.project_id, users=("u2", "u3"), start=FIXED)  # Monday 2 March
    window = {"after": "2026-02-01", "before": "2026-04-01"}
    weekly = get(client, "active-users/", project.personal_api_key, interval="week", **window).json()
    assert weekly["interval"] == "week"
    assert [(r["bucket"], r["active_users"]) for r in weekly["results"]] == [
        ("2026-02-23T00:00:00Z", 2),
        ("2026-03-02T00:00:00Z", 2),
    ]
    monthly = get(client, "active-users/", project.personal_api_key, interval="month", **window).json()
    assert monthly["results"] == [{"bucket": "2026-03-01T00:00:00Z", "active_users": 3}]


# --- bad-events/ ---------------------------------------------------------------------------


def test_bad_events_are_listed_with_their_error_and_paginated(client, project):
    seed_bad(project.project_id, 5)
    first = get(client, "bad-events/", project.personal_api_key, limit=3).json()
    assert [r["error_code"] for r in first["results"]] == ["missing_field"] * 3
    assert set(first["results"][0]) == {"id", "received_at", "error_code", "field", "message", "payload"}
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
    assert len(second["results"]) == 2 and second["next"] is None
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 5
    assert ids == sorted(ids, reverse=True)  # one received_at: newest id first


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_key_is_a_401(client, path):
    response = get(client, path)
    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated", "field": None, "message": "Authentication credentials were not provided.",
    }  # fmt: skip
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_wrong_key_is_a_401(client, path, project):
    response = get(client, path, "tls_not_a_key")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token tls_x", "tls_only_the_key"])
def test_a_malformed_authorization_header_is_a_401(client, project, header):
    assert client.get(BASE + "events/", HTTP_AUTHORIZATION=header).status_code == 401


def test_the_project_api_key_cannot_read(client, project):
    # The public write-only key ships inside mobile apps: it must never read analytics.
    assert get(client, "events/", project.api_key).status_code == 401


def test_a_revoked_key_is_a_401(client, project):
    assert get(client, "events/", project.personal_api_key).status_code == 200
    PersonalAPIKey.objects.filter(project_id=project.project_id).update(is_revoked=True)
    assert get(client, "events/", project.personal_api_key).status_code == 401


def test_the_bearer_scheme_is_case_insensitive(client, project):
    response = client.get(BASE + "events/", HTTP_AUTHORIZATION=f"bearer {project.personal_api_key}")
    assert response.status_code == 200


def test_a_logged_in_non_staff_user_is_refused(client, project):
    client.force_login(get_user_model().objects.create_user("someone", password="x"))
    response = get(client, "events/", project_id=project.project_id)
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


# --- tenant isolation ----------------------------------------------------------------------


def test_the_route_tests_cover_every_named_route_of_the_query_api():
    assert ROUTES, "no query API route found under core.urls_query"
    # Django's own index of the root's names (the admin's live in its namespace) against the walk.
    named = {name for name in get_resolver("core.urls_query").reverse_dict if isinstance(name, str)}
    assert set(ROUTES) == named
    for name, path in ROUTES.items():
        assert path.startswith(BASE) and reverse(name, urlconf="core.urls_query", kwargs=PARAMETERS[name]) == path


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_project_key_never_sees_another_projects_data(client, path, project, other_project):
    seed_definitions(project.project_id)  # the same flag and experiment keys, no data
    seed_everything(other_project.project_id, user="other-projects-user", event_type="other_projects_event")
    response = get(client, path, project.personal_api_key, **SAMPLE_QUERIES.get(path, {}))
    assert answered_rows(path, response) == []
    assert b"other-projects-user" not in response.content and b"other_projects_event" not in response.content
    # ... while the other project's own key does see it: the seed reaches this route.
    assert answered_rows(path, get(client, path, other_project.personal_api_key, **SAMPLE_QUERIES.get(path, {}))) != []


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_project_id_parameter_does_not_widen_a_keys_reach(client, path, project, other_project):
    seed_definitions(project.project_id)  # the same flag and experiment keys, no data
    seed_everything(other_project.project_id)
    response = get(client, path, project.personal_api_key, project_id=other_project.project_id,
                   **SAMPLE_QUERIES.get(path, {}))  # fmt: skip
    assert answered_rows(path, response) == []


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_staff_user_reads_exactly_the_project_they_name(client, path, project, other_project):
    staff_client(client)
    seed_definitions(project.project_id)  # the same flag and experiment keys, no data
    seed_everything(other_project.project_id)
    sample = SAMPLE_QUERIES.get(path, {})
    assert answered_rows(path, get(client, path, project_id=other_project.project_id, **sample)) != []
    assert answered_rows(path, get(client, path, project_id=project.project_id, **sample)) == []


@pytest.mark.parametrize("path", LISTS)
def test_a_staff_users_next_link_stays_on_the_named_project(client, path, project, other_project):
    staff_client(client)
    seed_bad(other_project.project_id, 3)
    insert_events([{"project_id": other_project.project_id, "timestamp": HOUR} for _ in range(3)])
    first = get(client, path, project_id=other_project.project_id, limit=2).json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_staff_user_must_name_an_existing_project(client, path):
    staff_client(client)
    missing = get(client, path)
    assert (missing.status_code, missing.json()["field"]) == (400, "project_id")
    unknown = get(client, path, project_id=999_999)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


# --- validation ----------------------------------------------------------------------------


def cursor(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("event-aggregates/", {"interval": "minute"}, "interval"),
        ("event-aggregates/", {"interval": "HOUR"}, "interval"),
        ("event-aggregates/", {"breakdown": "country"}, "breakdown"),
        ("event-aggregates/", {"breakdown": "distinct_id"}, "breakdown"),
        ("event-aggregates/", {"event_type": "a\x00b"}, "event_type"),
        ("active-users/", {"interval": "year"}, "interval"),
        ("active-users/", {"interval": "hour"}, "interval"),
        ("events/event_counts/", {"after": "yesterday"}, "after"),
        ("events/event_counts/", {"before": "2026-13-01"}, "before"),
        ("events/event_counts/", {"after": "2026-05-02T00:00:00Z", "before": "2026-05-01T00:00:00Z"}, "after"),
        ("events/event_counts/", {"after": "2026-05-01T00:00:00Z", "before": "2026-05-01T00:00:00Z"}, "after"),
        ("events/event_counts/", {"after": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "after"),
        ("events/event_counts/", {"before": "0001-01-02"}, "before"),
        ("events/event_counts/", {"after": "0001-01-01T00:00:00+01:00"}, "after"),
        ("events/", {"after": "2026-05-02", "before": "2026-05-01"}, "after"),
        ("events/", {"limit": "0"}, "limit"),
        ("events/", {"limit": "5000"}, "limit"),
        ("events/", {"limit": "-1"}, "limit"),
        ("events/", {"limit": "²"}, "limit"),
        ("events/", {"limit": "ten"}, "limit"),
        ("events/", {"cursor": "!!!"}, "cursor"),
        ("events/", {"cursor": cursor("a|b")}, "cursor"),
        ("events/", {"cursor": cursor("2026-05-01T00:00:00|00000000-0000-0000-0000-000000000000")}, "cursor"),
        ("events/", {"cursor": cursor("2026-05-01T00:00:00+00:00|1")}, "cursor"),
        ("events/", {"distinct_id": "x" * 201}, "distinct_id"),
        ("events/", {"session_id": "s\x00"}, "session_id"),
        ("bad-events/", {"cursor": cursor("x")}, "cursor"),
        # Offsets Python takes and PostgreSQL does not (beyond ±15:59).
        ("events/", {"cursor": cursor("2026-05-01T00:00:00+20:00|00000000-0000-0000-0000-000000000000")}, "cursor"),
        ("events/", {"cursor": cursor("2026-05-01T00:00:00-23:59|00000000-0000-0000-0000-000000000000")}, "cursor"),
        ("bad-events/", {"cursor": cursor("2026-05-01T00:00:00+16:00|1")}, "cursor"),
        ("bad-events/", {"cursor": cursor("0001-01-01T00:00:00+01:00|1")}, "cursor"),
        ("bad-events/", {"cursor": cursor("2026-05-01T00:00:00+00:00|one")}, "cursor"),
        ("bad-events/", {"limit": "1001"}, "limit"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, project, path, query, field):
    response = get(client, path, project.personal_api_key, **query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("path", "tail"), [("events/", "|00000000-0000-0000-0000-000000000000"), ("bad-events/", "|1")]
)
@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+23:59"])
def test_a_cursor_offset_postgresql_cannot_take_is_a_400_with_rows_to_read(client, project, path, tail, offset):
    # With rows to read PostgreSQL gets the time, and refused it: a 500 (issue 6, item 7).
    seed_everything(project.project_id)
    response = get(client, path, project.personal_api_key, cursor=cursor(f"2026-05-01T00:00:00{offset}{tail}"))
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_parameter", "cursor",
    )  # fmt: skip


@pytest.mark.parametrize("offset", ["+15:59", "-15:59", "+01:00"])
def test_a_cursor_time_with_an_offset_is_read_in_utc(client, project, offset):
    seed_everything(project.project_id)
    query = {"cursor": cursor(f"2100-01-01T00:00:00{offset}|1")}
    assert get(client, "bad-events/", project.personal_api_key, **query).status_code == 200


@pytest.mark.parametrize("project_id", ["abc", "-1", "1.0", "²", "9" * 30])
def test_a_staff_users_bad_project_id_is_a_400(client, project_id):
    staff_client(client)
    response = get(client, "events/", project_id=project_id)
    assert (response.status_code, response.json()["field"]) == (400, "project_id")


@pytest.mark.parametrize(
    "after",
    ["2026-03-02", "2026-03-02T00:00:00", "2026-03-02T00:00:00Z", "2026-03-02 00:00:00", "2026-03-02T01:00:00 01:00"],
)
def test_times_are_iso_8601_and_utc_without_an_offset(client, project, after):
    # The last is '+01:00' sent unescaped: a query string turns '+' into a space.
    body = get(client, "events/event_counts/", project.personal_api_key, after=after, before="2026-03-03").json()
    assert body["after"] == "2026-03-02T00:00:00Z"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_query_api_is_read_only(client, path, project):
    response = client.post(BASE + path, {}, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")
    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "field": None, "message": 'Method "POST" not allowed.'}
