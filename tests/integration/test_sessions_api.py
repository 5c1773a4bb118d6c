"""The sessions endpoints of the query API over HTTP: admin/sessions/ (filters, the person behind
a distinct_id, the active view, pagination), admin/sessions/{id}/ (the session's event timeline)
and admin/session-metrics/. Rows are written straight into rm_sessions and the event store: the
sessions projection is tested on its own."""

import math
import random
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from django.db import connection

from contracts.session_durations import RELATIVE_ERROR
from tests.integration.test_query_api import (
    BASE,
    FIXED,
    get,
    insert_session_events,
    seed_person,
    seed_session,
    staff_client,
)

pytestmark = pytest.mark.django_db
P1 = "00000000-0000-4000-8000-000000000001"


def sessions(client, project, **query):
    response = get(client, "sessions/", project.personal_api_key, **query)
    assert response.status_code == 200, response.content
    return response.json()


def ids(body):
    return [row["session_id"] for row in body["results"]]


# --- admin/sessions/ -----------------------------------------------------------------------


def test_a_session_is_listed_with_every_field(client, project):
    seed_session(project.project_id, "s1", "u1", start=FIXED, minutes=2, device_id="d1", event_count=5, screen_count=3)
    seed_person(project.project_id, P1, distinct_ids=("u1",))
    [row] = sessions(client, project)["results"]
    assert row == {
        "session_id": "s1", "inferred": False, "distinct_id": "u1", "person_id": P1, "device_id": "d1",
        "app_version": "1.0", "os_name": "iOS", "os_version": "17.1", "start": "2026-03-02T00:00:00Z",
        "end": "2026-03-02T00:02:00Z", "duration_seconds": 120.0, "event_count": 5, "screen_count": 3,
        "first_event": "$session_start", "last_event": "$session_end", "ended_by": "explicit", "active": False,
    }  # fmt: skip


def test_unknown_device_version_and_os_are_null_and_an_unmapped_id_has_no_person(client, project):
    seed_session(project.project_id, "s1", "u1", device_id="", app_version="", os_name="", os_version="")
    [row] = sessions(client, project)["results"]
    assert (row["device_id"], row["app_version"], row["os_name"], row["os_version"], row["person_id"]) == (
        None, None, None, None, None,
    )  # fmt: skip


def test_sessions_are_newest_first_and_every_one_is_walked_once_across_pages(client, project):
    for i in range(4):
        seed_session(project.project_id, f"s{i}|{i}", "u1", start=FIXED + timedelta(hours=i))
    for name in ("tie-a", "tie-b", "tie-c"):  # one start: the session id breaks the tie
        seed_session(project.project_id, name, "u1", start=FIXED + timedelta(hours=10))
    seen, url = [], BASE + "sessions/?limit=2"
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
        seen += ids(body)
        url = body["next"]
    assert seen == ["tie-c", "tie-b", "tie-a", "s3|3", "s2|2", "s1|1", "s0|0"]


def test_the_time_range_applies_to_the_start(client, project):
    seed_session(project.project_id, "early", "u1", start=FIXED, minutes=120)
    seed_session(project.project_id, "late", "u1", start=FIXED + timedelta(hours=1))
    body = sessions(client, project, after=(FIXED + timedelta(minutes=30)).isoformat())
    assert ids(body) == ["late"]
    assert ids(sessions(client, project, before=(FIXED + timedelta(minutes=30)).isoformat())) == ["early"]


def test_the_list_has_no_default_range(client, project):
    seed_session(project.project_id, "old", "u1", start=datetime.now(UTC) - timedelta(days=60))
    assert ids(sessions(client, project)) == ["old"]


def test_a_distinct_id_finds_the_sessions_of_every_id_of_its_person(client, project):
    seed_person(project.project_id, P1, distinct_ids=("anon-1", "user@example.com"))
    seed_session(project.project_id, "before-login", "anon-1", start=FIXED)
    seed_session(project.project_id, "after-login", "user@example.com", start=FIXED + timedelta(hours=1))
    seed_session(project.project_id, "someone-else", "u2", start=FIXED + timedelta(hours=2))
    for distinct_id in ("anon-1", "user@example.com"):
        body = sessions(client, project, distinct_id=distinct_id)
        assert ids(body) == ["after-login", "before-login"]
        assert {row["person_id"] for row in body["results"]} == {P1}
    # An id no person has yet (the people projection trails): its own sessions.
    assert ids(sessions(client, project, distinct_id="u2")) == ["someone-else"]
    assert ids(sessions(client, project, distinct_id="nobody")) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"device_id": "d1"}, ["a"]),
        ({"app_version": "2.0"}, ["b"]),
        ({"os_name": "Android"}, ["b"]),
        ({"min_duration": "600"}, ["c", "a"]),
        ({"min_duration": "600.5"}, ["c"]),
        ({"max_duration": "600"}, ["b", "a"]),
        ({"min_duration": "60", "max_duration": "600"}, ["b", "a"]),
        ({"ended_by": "inactivity"}, ["b"]),
        ({"ended_by": "cap"}, ["c"]),
        ({"ended_by": "explicit", "device_id": "d1"}, ["a"]),
    ],
)
def test_sessions_are_filtered(client, project, query, expected):
    seed_session(project.project_id, "a", "u1", start=FIXED, minutes=10, device_id="d1")
    seed_session(
        project.project_id, "b", "u2", start=FIXED + timedelta(hours=1), minutes=5, app_version="2.0",
        os_name="Android", ended_by="inactivity", inferred=True,
    )  # fmt: skip
    seed_session(project.project_id, "c", "u3", start=FIXED + timedelta(hours=2), minutes=24 * 60, ended_by="cap")
    assert ids(sessions(client, project, **query)) == expected


def test_a_session_not_ended_with_an_event_within_the_inactivity_gap_is_active(client, project, settings):
    settings.TIDELOG_SESSION_INACTIVITY_MINUTES = 30
    now = datetime.now(UTC)
    seed_session(project.project_id, "open", "u1", start=now - timedelta(minutes=40), minutes=30, ended_by="inactivity")
    seed_session(project.project_id, "idle", "u2", start=now - timedelta(minutes=90), minutes=30, ended_by="inactivity")
    seed_session(project.project_id, "ended", "u3", start=now - timedelta(minutes=20), minutes=10)
    seed_session(project.project_id, "old", "u4", start=now - timedelta(days=3), minutes=5, ended_by="inactivity")
    body = sessions(client, project)
    assert {row["session_id"]: row["active"] for row in body["results"]} == {
        "open": True, "idle": False, "ended": False, "old": False,
    }  # fmt: skip
    assert ids(sessions(client, project, active="true")) == ["open"]
    assert ids(sessions(client, project, active="false")) == ["ended", "idle", "old"]


def test_a_session_open_longer_than_the_cap_is_not_active_in_the_field_nor_the_filter(client, project, settings):
    settings.TIDELOG_SESSION_INACTIVITY_MINUTES = 30
    settings.TIDELOG_SESSION_MAX_HOURS = 24
    now = datetime.now(UTC)
    # An SDK that never rotates its session id: last event 5 minutes ago, started 30 hours ago.
    seed_session(project.project_id, "ancient", "u1", start=now - timedelta(hours=30), minutes=30 * 60 - 5,
                 ended_by="inactivity")  # fmt: skip
    seed_session(project.project_id, "fresh", "u2", start=now - timedelta(hours=2), minutes=115, ended_by="inactivity")
    body = sessions(client, project)
    assert {row["session_id"]: row["active"] for row in body["results"]} == {"ancient": False, "fresh": True}
    assert ids(sessions(client, project, active="true")) == ["fresh"]
    assert ids(sessions(client, project, active="false")) == ["ancient"]


def test_the_inactivity_setting_decides_what_is_active(client, project, settings):
    now = datetime.now(UTC)
    seed_session(project.project_id, "s", "u1", start=now - timedelta(minutes=50), minutes=10, ended_by="inactivity")
    settings.TIDELOG_SESSION_INACTIVITY_MINUTES = 30
    assert ids(sessions(client, project, active="true")) == []
    settings.TIDELOG_SESSION_INACTIVITY_MINUTES = 60
    assert ids(sessions(client, project, active="true")) == ["s"]


def test_the_next_link_keeps_the_filters(client, project):
    for i in range(3):
        seed_session(project.project_id, f"d1-{i}", "u1", start=FIXED + timedelta(hours=i), device_id="d1")
        seed_session(project.project_id, f"d2-{i}", "u1", start=FIXED + timedelta(hours=i), device_id="d2")
    first = sessions(client, project, device_id="d1", limit=2)
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
    assert ids(first) + ids(second) == ["d1-2", "d1-1", "d1-0"]
    assert second["next"] is None


def test_another_projects_sessions_and_persons_are_never_mixed_in(client, project, other_project):
    seed_session(project.project_id, "s1", "u1", start=FIXED)
    seed_session(other_project.project_id, "s2", "u1", start=FIXED)
    # The other project maps u1 to a person: that mapping is not this project's.
    seed_person(other_project.project_id, P1, distinct_ids=("u1", "u9"))
    seed_session(project.project_id, "s9", "u9", start=FIXED)
    body = sessions(client, project, distinct_id="u1")
    assert ids(body) == ["s1"]
    assert body["results"][0]["person_id"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"min_duration": "-1"}, "min_duration"),
        ({"min_duration": "1e3"}, "min_duration"),
        ({"max_duration": "ten"}, "max_duration"),
        ({"ended_by": "timeout"}, "ended_by"),
        ({"active": "yes"}, "active"),
        ({"device_id": "d" * 201}, "device_id"),
        ({"app_version": "1\x00"}, "app_version"),
        ({"after": "2026-05-02", "before": "2026-05-01"}, "after"),
        ({"cursor": "!!!"}, "cursor"),
        ({"limit": "1001"}, "limit"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_the_field(client, project, query, field):
    response = get(client, "sessions/", project.personal_api_key, **query)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_parameter", field,
    )  # fmt: skip


def test_the_list_is_one_query_after_authentication(client, project, django_assert_num_queries):
    seed_session(project.project_id, "s1", "u1")
    get(client, "sessions/", project.personal_api_key)
    with django_assert_num_queries(2):  # the key lookup, the sessions with their persons
        assert get(client, "sessions/", project.personal_api_key, distinct_id="u1").status_code == 200


# --- admin/sessions/{session_id}/ ----------------------------------------------------------


def detail(client, project, session_id, **query):
    return client.get(f"{BASE}sessions/{session_id}/", query, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")


def event(project, minute, distinct_id="u1", session_id=None, device_id=None, event_type="e"):
    return {
        "project_id": project.project_id, "timestamp": FIXED + timedelta(minutes=minute), "distinct_id": distinct_id,
        "session_id": session_id, "device_id": device_id, "event_type": event_type,
    }  # fmt: skip


def test_an_explicit_sessions_timeline_holds_every_event_with_its_session_id_whoever_sent_it(client, project):
    seed_person(project.project_id, P1, distinct_ids=("anon", "user"))
    seed_session(project.project_id, "s1", "anon", start=FIXED + timedelta(minutes=1), minutes=10)
    insert_session_events(
        [
            event(project, 0, "anon", "s1", event_type="before-the-start"),
            event(project, 1, "anon", "s1", event_type="$session_start"),
            event(project, 5, "user", "s1", event_type="$identify"),  # the same person, after login
            event(project, 6, "stranger", "s1", event_type="another-persons"),  # counted by the session too
            event(project, 7, "anon", "s2", event_type="another-session"),
            event(project, 8, "anon", None, event_type="no-session"),
            event(project, 11, "user", "s1", event_type="$session_end"),
            event(project, 12, "user", "s1", event_type="after-the-end"),
        ]
    )
    body = detail(client, project, "s1").json()
    assert (body["session_id"], body["person_id"], body["distinct_id"]) == ("s1", P1, "anon")
    assert [row["event_type"] for row in body["events"]] == [
        "$session_start", "$identify", "another-persons", "$session_end",
    ]  # fmt: skip
    assert body["next"] is None
    assert body["events"][0]["timestamp"] == "2026-03-02T00:01:00Z"


def test_an_inferred_sessions_timeline_holds_its_devices_events_without_a_session_id(client, project):
    seed_session(project.project_id, "inferred-1", "u1", start=FIXED, minutes=10, inferred=True, device_id="d1")
    seed_session(project.project_id, "inferred-2", "u1", start=FIXED, minutes=10, inferred=True, device_id="")
    insert_session_events(
        [
            event(project, 0, device_id="d1", event_type="ours"),
            event(project, 3, device_id="d2", event_type="other-device"),
            event(project, 4, device_id=None, event_type="no-device"),
            event(project, 5, session_id="s1", device_id="d1", event_type="explicit-session"),
            event(project, 10, device_id="d1", event_type="ours-last"),
        ]
    )
    assert [row["event_type"] for row in detail(client, project, "inferred-1").json()["events"]] == [
        "ours",
        "ours-last",
    ]
    assert [row["event_type"] for row in detail(client, project, "inferred-2").json()["events"]] == ["no-device"]


def test_the_timeline_is_oldest_first_and_paginated(client, project):
    seed_session(project.project_id, "s1", "u1", start=FIXED, minutes=60)
    insert_session_events([event(project, minute // 2, session_id="s1") for minute in range(7)])  # ties in pairs
    seen, url, pages = [], f"{BASE}sessions/s1/?limit=3", 0
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
        assert body["session_id"] == "s1"
        seen += body["events"]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert len({row["uuid"] for row in seen}) == 7
    assert [row["timestamp"] for row in seen] == sorted(row["timestamp"] for row in seen)


def test_the_timeline_limit_defaults_to_100(client, project):
    seed_session(project.project_id, "s1", "u1", start=FIXED, minutes=200)
    insert_session_events([event(project, minute, session_id="s1") for minute in range(101)])
    body = detail(client, project, "s1").json()
    assert len(body["events"]) == 100 and body["next"] is not None


@pytest.mark.parametrize("session_id", ["nope", "s1-of-the-other-project", "%00", "%FF", "x" * 201])
def test_an_unknown_session_is_a_404_in_the_error_shape(client, project, other_project, session_id):
    seed_session(other_project.project_id, "s1-of-the-other-project", "u1")
    response = detail(client, project, session_id)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "field", "message"} and response.json()["code"] == "not_found"


def test_a_session_id_with_a_pipe_and_accents_is_found_by_its_escaped_path(client, project):
    seed_session(project.project_id, "été|1", "u1")
    assert detail(client, project, "%C3%A9t%C3%A9%7C1").json()["session_id"] == "été|1"


def test_the_detail_is_two_queries_after_authentication(client, project, django_assert_num_queries):
    seed_session(project.project_id, "s1", "u1")
    detail(client, project, "s1")
    with django_assert_num_queries(3):  # the key lookup, the session with its person, its events
        assert detail(client, project, "s1").status_code == 200


@pytest.mark.parametrize(("query", "field"), [({"limit": "0"}, "limit"), ({"cursor": "x"}, "cursor")])
def test_bad_timeline_parameters_are_a_400_naming_the_field(client, project, query, field):
    seed_session(project.project_id, "s1", "u1")
    response = detail(client, project, "s1", **query)
    assert (response.status_code, response.json()["field"]) == (400, field)


# --- admin/session-metrics/ ----------------------------------------------------------------


def metrics(client, project, **query):
    response = get(client, "session-metrics/", project.personal_api_key, **query)
    assert response.status_code == 200, response.content
    return response.json()


WINDOW = {"after": "2026-03-01", "before": "2026-03-20"}


def test_metrics_give_count_median_p90_and_events_per_session_per_day(client, project):
    for i, minutes in enumerate((1, 2, 3, 4, 10)):
        seed_session(
            project.project_id, f"a{i}", "u1", start=FIXED + timedelta(hours=i), minutes=minutes, event_count=i
        )
    seed_session(project.project_id, "b", "u1", start=FIXED + timedelta(days=1), minutes=1, event_count=7)
    body = metrics(client, project, interval="day", **WINDOW)
    assert body["interval"] == "day"
    assert body["estimated"] == {"median_duration_seconds": 0.01, "p90_duration_seconds": 0.01}
    close = partial(pytest.approx, rel=RELATIVE_ERROR)
    assert body["results"] == [
        {
            "bucket": "2026-03-02T00:00:00Z", "sessions": 5, "median_duration_seconds": close(180.0),
            # percentile_cont: 4 min + 0.6 of the way to 10 min.
            "p90_duration_seconds": close(240 + 0.6 * 360), "events_per_session": 2.0,
        },
        {
            "bucket": "2026-03-03T00:00:00Z", "sessions": 1, "median_duration_seconds": close(60.0),
            "p90_duration_seconds": close(60.0), "events_per_session": 7.0,
        },
    ]  # fmt: skip


def test_metrics_percentiles_stay_within_the_stated_error_of_percentile_cont(client, project):
    """Hundreds of sessions, log-uniform from a millisecond to ten hours and some of one
    instant, over three days and two versions: every bucket's count and events per session
    equal SQL's over rm_sessions, and its median and p90 are within the stated relative error
    of percentile_cont's."""
    rng = random.Random(9)
    for n in range(600):
        seconds = 0.0 if n % 25 == 0 else math.exp(rng.uniform(math.log(0.001), math.log(36_000)))
        seed_session(
            project.project_id, f"s{n}", "u1", start=FIXED + timedelta(hours=rng.randrange(72)),
            minutes=seconds / 60, event_count=rng.randrange(1, 50), app_version=rng.choice(("1.0", "2.0")),
        )  # fmt: skip
    for breakdown in (None, "app_version"):
        shown = f", {breakdown}" if breakdown else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT date_trunc('day', start_at, 'UTC'){shown}, count(*), avg(event_count)::float8,
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_at - start_at)),
                           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM end_at - start_at))
                    FROM rm_sessions WHERE project_id = %s GROUP BY 1{", 2" if breakdown else ""} ORDER BY 1{shown}""",
                [project.project_id],
            )
            expected = cursor.fetchall()
        query = {"breakdown": breakdown} if breakdown else {}
        answered = metrics(client, project, interval="day", **WINDOW, **query)["results"]
        assert len(answered) == len(expected) == (6 if breakdown else 3)
        for row, (_, *split, sessions, events_per_session, median, p90) in zip(answered, expected, strict=True):
            assert [row[breakdown] for breakdown in (breakdown,) if breakdown] == split
            assert (row["sessions"], row["events_per_session"]) == (sessions, pytest.approx(events_per_session))
            assert row["median_duration_seconds"] == pytest.approx(float(median), rel=RELATIVE_ERROR, abs=1e-9)
            assert row["p90_duration_seconds"] == pytest.approx(float(p90), rel=RELATIVE_ERROR, abs=1e-9)


def test_metrics_bucket_by_utc_hour_and_by_week_from_monday(client, project):
    seed_session(project.project_id, "sun", "u1", start=FIXED - timedelta(hours=1))  # Sunday 23:00
    seed_session(project.project_id, "mon", "u1", start=FIXED + timedelta(minutes=59))
    seed_session(project.project_id, "mon2", "u1", start=FIXED + timedelta(days=6, hours=23))
    window = {"after": "2026-02-01", "before": "2026-04-01"}
    hourly = metrics(client, project, interval="hour", **window)["results"]
    assert [(row["bucket"], row["sessions"]) for row in hourly] == [
        ("2026-03-01T23:00:00Z", 1), ("2026-03-02T00:00:00Z", 1), ("2026-03-08T23:00:00Z", 1),
    ]  # fmt: skip
    weekly = metrics(client, project, interval="week", **window)["results"]
    assert [(row["bucket"], row["sessions"]) for row in weekly] == [
        ("2026-02-23T00:00:00Z", 1), ("2026-03-02T00:00:00Z", 2),
    ]  # fmt: skip


def test_metrics_break_down_by_app_version_and_os_name(client, project):
    seed_session(project.project_id, "a", "u1", start=FIXED, app_version="1.0", os_name="iOS")
    seed_session(project.project_id, "b", "u1", start=FIXED, app_version="2.0", os_name="iOS")
    seed_session(project.project_id, "c", "u1", start=FIXED, app_version="", os_name="Android")
    by_version = metrics(client, project, breakdown="app_version", **WINDOW)["results"]
    assert [(row["app_version"], row["sessions"]) for row in by_version] == [("1.0", 1), ("2.0", 1), (None, 1)]
    by_os = metrics(client, project, breakdown="os_name", **WINDOW)["results"]
    assert [(row["os_name"], row["sessions"]) for row in by_os] == [("Android", 1), ("iOS", 2)]


def test_metrics_default_to_days_over_the_last_seven_days(client, project):
    now = datetime.now(UTC)
    seed_session(project.project_id, "recent", "u1", start=now - timedelta(days=1))
    seed_session(project.project_id, "old", "u1", start=now - timedelta(days=8))
    body = metrics(client, project)
    assert body["interval"] == "day" and sum(row["sessions"] for row in body["results"]) == 1
    after, before = datetime.fromisoformat(body["after"]), datetime.fromisoformat(body["before"])
    assert before - after == timedelta(days=7)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"interval": "month"}, "interval"),
        ({"interval": "minute"}, "interval"),
        ({"breakdown": "device_id"}, "breakdown"),
        ({"after": "yesterday"}, "after"),
        ({"after": "2026-03-02", "before": "2026-03-01"}, "after"),
    ],
)
def test_bad_metrics_parameters_are_a_400_naming_the_field(client, project, query, field):
    response = get(client, "session-metrics/", project.personal_api_key, **query)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_parameter", field,
    )  # fmt: skip


def test_a_staff_users_next_link_stays_on_the_named_project(client, project, other_project):
    staff_client(client)
    for i in range(3):
        seed_session(other_project.project_id, f"s{i}", "u1", start=FIXED + timedelta(hours=i))
    seed_session(project.project_id, "not-this-one", "u1", start=FIXED)
    first = client.get(BASE + "sessions/", {"project_id": other_project.project_id, "limit": 2}).json()
    second = client.get(first["next"]).json()
    assert ids(first) + ids(second) == ["s2", "s1", "s0"]
