"""An $identify or $create_alias naming an illegal id is refused at ingestion with the code
`illegal_distinct_id`, alike through the RSGI edge, the WSGI fast path and the Django views, and
lands in the bad-events list the query API answers; plain events with such ids are stored."""

import json

import pytest

from tests.command_helpers import drain_all, make_event, stored_count
from tests.integration.test_fast_path_parity import (  # noqa: F401 (fixtures)
    Request,
    batch_on_three_servers,
    call,
    django_views,
    fast_path,
    rejected,
    rsgi_edge,
)

pytestmark = pytest.mark.django_db(transaction=True)

ILLEGAL = [
    make_event(event_type="$identify", distinct_id="user-1", properties={"$anon_distinct_id": "undefined"}),
    make_event(event_type="$identify", distinct_id="NULL", properties={"$anon_distinct_id": "device-1"}),
    make_event(event_type="$create_alias", distinct_id="user-1", properties={"alias": "[object Object]"}),
]
LEGAL = [
    make_event(event_type="$identify", distinct_id="user-1", properties={"$anon_distinct_id": "device-1"}),
    make_event(event_type="app_opened", distinct_id="anonymous"),  # never merges: accepted
]
EXPECTED = [
    (0, "illegal_distinct_id", "properties.$anon_distinct_id"),
    (1, "illegal_distinct_id", "distinct_id"),
    (2, "illegal_distinct_id", "properties.alias"),
]


def batch() -> bytes:
    return json.dumps({"events": ILLEGAL + LEGAL}).encode()


def test_the_three_servers_refuse_illegal_ids_alike(rsgi_edge, fast_path, django_views, project):  # noqa: F811
    answer = batch_on_three_servers(rsgi_edge, fast_path, django_views, project, ILLEGAL + LEGAL)
    assert answer["accepted"] == 2
    assert rejected(answer) == EXPECTED


def test_a_refused_identify_is_in_the_bad_events_list_with_its_reason(client, fast_path, project):  # noqa: F811
    headers = {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}
    assert call(fast_path, Request("POST", "batch/", batch(), headers), project.api_key)[0] == 200
    status, _, body = call(fast_path, Request("POST", "capture/", json.dumps(ILLEGAL[0]).encode(), headers), "")
    assert status == 400
    assert (json.loads(body)["code"], json.loads(body)["field"]) == (
        "illegal_distinct_id",
        "properties.$anon_distinct_id",
    )
    drain_all()
    assert stored_count(project.project_id) == 2
    listed = client.get(
        "/api/v1/analytics/admin/bad-events/", {"limit": 10}, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}"
    )
    assert listed.status_code == 200
    results = listed.json()["results"]
    assert sorted((r["error_code"], r["field"]) for r in results) == sorted(
        [(code, field) for _, code, field in EXPECTED] + [("illegal_distinct_id", "properties.$anon_distinct_id")]
    )
    assert all("cannot identify a person" in r["message"] for r in results)
