"""A session's timeline (admin/sessions/{id}/) lists exactly the events the sessions projection
counted in it: an inferred session its own (distinct_id, device_id)'s events only, even when the
same device's next user was merged into the same person; an explicit session every event with
its session_id, whatever distinct_id sent it (an $identify mid-session that merged nothing)."""

import msgspec
import pytest

from tests.integration.test_projection_sessions import append, captured, mixed_workload
from tests.integration.test_query_api import get
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)


def sessions_of(client, project):
    return get(client, "sessions/", project.personal_api_key, limit=1000).json()["results"]


def test_every_sessions_timeline_holds_exactly_the_events_it_counts(client, project):
    pid = project.project_id
    for arrival in mixed_workload():
        append(arrival, pid)
    # One phone, no session_id: anonymous A, then user U, merged into one person by U's $identify.
    identify = captured(5, "$identify", "U", device_id="shared-phone")
    identify = msgspec.structs.replace(identify, properties_json=b'{"$anon_distinct_id": "A"}')
    append([captured(m, "e", "A", device_id="shared-phone") for m in (0, 4, 10)], pid)
    append([identify, *(captured(m, "e", "U", device_id="shared-phone") for m in (7, 20))], pid)
    # An explicit session whose user logs in half-way with an $identify naming no earlier id.
    append([captured(0, "$session_start", "anon-9", session_id="s9"), captured(3, "e", "anon-9", session_id="s9"),
            captured(4, "$identify", "user-9", session_id="s9"), captured(6, "e", "user-9", session_id="s9")], pid)  # fmt: skip
    run_projections()
    listed = sessions_of(client, project)
    person = {row["distinct_id"]: row["person_id"] for row in listed}
    assert person["A"] == person["U"]  # the merge happened: one person, two ids on one device
    assert len(listed) >= 8
    for session in listed:
        body = get(client, f"sessions/{session['session_id']}/", project.personal_api_key, limit=1000).json()
        assert len(body["events"]) == session["event_count"], session
        if session["inferred"]:
            assert {event["distinct_id"] for event in body["events"]} == {session["distinct_id"]}
            assert {event["session_id"] for event in body["events"]} == {None}
        else:
            assert {event["session_id"] for event in body["events"]} == {session["session_id"]}
    s9 = get(client, "sessions/s9/", project.personal_api_key).json()
    assert [event["distinct_id"] for event in s9["events"]] == ["anon-9", "anon-9", "user-9", "user-9"]
