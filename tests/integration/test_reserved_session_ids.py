"""A session_id in the form of an inferred session's (`inferred-…`) is refused at ingestion, as
`invalid_value` on `session_id`, alike through the RSGI edge, the WSGI fast path and the Django
views, and by session/start/: no SDK's session can collide with, or merge into, an inferred one."""

import json

import pytest

from tests.command_helpers import make_event
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

EVENTS = [
    make_event(session_id="inferred-0123456789abcdef0123456789abcdef"),
    make_event(session_id="inferred-"),
    make_event(session_id="my-inferred-session"),  # the prefix only is reserved
    make_event(session_id="Inferred-1"),  # and exactly: ids are compared as sent
]


def test_the_three_servers_refuse_a_reserved_session_id_alike(rsgi_edge, fast_path, django_views, project):  # noqa: F811
    answer = batch_on_three_servers(rsgi_edge, fast_path, django_views, project, EVENTS)
    assert answer["accepted"] == 2
    assert rejected(answer) == [
        (0, "invalid_value", "session_id"),
        (1, "invalid_value", "session_id"),
    ]


def test_session_start_refuses_a_reserved_session_id(fast_path, project):  # noqa: F811
    body = json.dumps({"distinct_id": "u1", "session_id": "inferred-abc"}).encode()
    status, _, answer = call(
        fast_path, Request("POST", "session/start/", body, {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}), ""
    )
    assert status == 400
    assert (json.loads(answer)["code"], json.loads(answer)["field"]) == ("invalid_value", "session_id")
