"""The command API's RSGI edge (core.rsgi_command), called as granian calls it, with a fake of
granian's protocol object: the same answers as the WSGI fast path, and bodies read only within
their deadline and size limit."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from command_side.rsgi_edge import Edge
from contracts import limits
from tests.command_helpers import drain_all, make_event, stored_count

pytestmark = pytest.mark.django_db


class Headers(dict[str, str]):
    def get_all(self, name: str) -> list[str]:
        return [self[name]] if name in self else []


@dataclass
class Scope:
    method: str
    path: str
    headers: Headers
    proto: str = "http"
    http_version: str = "1.1"
    server: str = "127.0.0.1:8000"
    client: str = "127.0.0.1:50000"
    scheme: str = "http"
    query_string: str = ""


@dataclass
class Protocol:
    """granian's RSGI HTTP protocol, as far as the edge uses it. `chunks` is the body as it
    arrives; None stands for a client that stops sending."""

    chunks: list[bytes | None] = field(default_factory=list)
    read: int = 0
    answer: tuple[int, dict[str, str], bytes] | None = None

    async def __call__(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if chunk is None:
                await asyncio.sleep(3600)
                return
            self.read += len(chunk)
            yield chunk

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, dict(headers), body)


@pytest.fixture
def edge(redis_client) -> Edge:  # type: ignore[no-untyped-def]
    from core.rsgi_command import application

    return Edge(application.django_app, body_timeout_seconds=0.2)


def call(
    edge: Edge, method: str, path: str, chunks: list[bytes | None], **headers: str
) -> tuple[Protocol, int, dict[str, str], dict[str, Any]]:
    protocol = Protocol(chunks)
    asyncio.run(edge(Scope(method, path, Headers(headers)), protocol))
    assert protocol.answer is not None
    status, answer_headers, body = protocol.answer
    return protocol, status, answer_headers, json.loads(body)


def test_a_capture_through_the_edge_is_stored(edge, project):
    event = make_event()
    body = json.dumps(event).encode()
    _, status, headers, answer = call(
        edge, "POST", "/api/v1/analytics/capture/", [body[:10], body[10:]],
        authorization=f"Bearer {project.api_key}", **{"content-length": str(len(body))},
    )  # fmt: skip
    assert (status, answer) == (200, {"accepted": 1, "uuid": event["uuid"]})
    assert headers["content-type"] == "application/json"
    drain_all()
    assert stored_count(project.project_id, uuid=event["uuid"]) == 1


def test_a_chunked_batch_is_read_to_its_end(edge, project):
    body = json.dumps({"events": [make_event(), make_event()]}).encode()
    _, status, _, answer = call(
        edge, "POST", "/api/v1/analytics/batch/", [body[:7], body[7:20], body[20:]],
        authorization=f"Bearer {project.api_key}",
    )  # fmt: skip
    assert (status, answer["accepted"]) == (200, 2)


def test_a_body_that_stops_coming_gets_a_408_and_the_connection_closed(edge, project):
    _, status, headers, answer = call(
        edge, "POST", "/api/v1/analytics/capture/", [b'{"event_type"', None],
        authorization=f"Bearer {project.api_key}", **{"content-length": "1000"},
    )  # fmt: skip
    assert (status, answer["code"]) == (408, "body_timeout")
    assert "0.2 s" in answer["message"]
    assert headers["connection"] == "close"


def test_a_declared_body_over_the_limit_is_refused_unread(edge, project):
    protocol, status, _, answer = call(
        edge, "POST", "/api/v1/analytics/batch/", [b"x" * 1024, None],
        authorization=f"Bearer {project.api_key}", **{"content-length": str(limits.MAX_BODY_BYTES + 1)},
    )  # fmt: skip
    assert (status, answer["code"]) == (413, "body_too_large")
    assert protocol.read == 0


def test_a_chunked_body_is_read_no_further_than_one_chunk_past_the_limit(edge, project):
    chunk = b"x" * (1024 * 1024)
    protocol, status, _, answer = call(
        edge, "POST", "/api/v1/analytics/batch/", [chunk] * 20, authorization=f"Bearer {project.api_key}"
    )
    assert (status, answer["code"]) == (413, "body_too_large")
    assert protocol.read == 6 * len(chunk)


def test_a_wrong_method_is_a_405_before_any_body_is_read(edge):
    # The body never comes: reading it would end in a 408.
    _, status, headers, answer = call(edge, "GET", "/api/v1/analytics/batch/", [None])
    assert (status, answer["code"], headers["Allow"]) == (405, "method_not_allowed", "POST")


def test_other_paths_go_to_django_with_their_body(edge):
    _, status, _, answer = call(edge, "POST", "/api/v1/analytics/nothing-here/", [b"{}"], **{"content-length": "2"})
    assert (status, answer["code"]) == (404, "not_found")


def test_the_endpoints_keep_the_threads_database_connection(edge, project):
    # Not one of its own per request (asgiref's per-task connections under a running loop).
    from django.db import connection

    connection.ensure_connection()
    before = connection.connection
    body = json.dumps(make_event()).encode()
    _, status, _, _ = call(
        edge, "POST", "/api/v1/analytics/capture/", [body], authorization=f"Bearer {project.api_key}"
    )
    assert status == 200
    assert connection.connection is before


def test_a_session_id_in_the_path_arrives_as_sent(edge, project):
    _, status, _, answer = call(
        edge, "PUT", "/api/v1/analytics/session/séance-1/end/", [b'{"distinct_id": "u"}'],
        authorization=f"Bearer {project.api_key}",
    )  # fmt: skip
    assert (status, answer["session_id"]) == (200, "séance-1")


@pytest.mark.parametrize("declared", ["²", "1" * 5000, "12x"])
def test_a_content_length_that_is_not_a_plain_number_is_never_a_500(edge, project, declared):
    _, status, _, answer = call(
        edge, "POST", "/api/v1/analytics/capture/", [b"{}"],
        authorization=f"Bearer {project.api_key}", **{"content-length": declared},
    )  # fmt: skip
    assert status in (400, 413)
    assert set(answer) >= {"code", "field", "message"}


def test_a_get_is_answered_without_reading_a_body(edge, project):
    """A GET declares no body (flag evaluation): the edge reads none, so a client that keeps
    the stream open is still answered at once, not after the body deadline."""
    protocol, status, _, answer = call(
        edge, "GET", "/api/v1/analytics/public/feature-flags/", [b"ignored", None],
        authorization=f"Bearer {project.api_key}",
    )  # fmt: skip
    assert (status, answer) == (200, {"flags": []})
    assert protocol.read == 0
