"""The iOS example (sdk_examples/ios) cannot be compiled here: no Swift toolchain installs on this
machine. What it sends is recorded in its README ("The requests, byte for byte"); these tests
replay those requests against a live Tidelog, gzipped exactly as Json.swift frames its deflate
output, and check that the Kotlin client, which does run here, sends the same requests."""

import json
import re
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import REPO, wait_for
from tests.sdk.kotlin_app import DemoApp, build_demo, kotlinc_missing, scripted_server

README = REPO / "sdk_examples" / "ios" / "README.md"
EXAMPLE_KEY = "tlp_example"


@dataclass
class Recorded:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def kind(self) -> str:
        for suffix, kind in (("/batch/", "batch"), ("/session/start/", "session_start"), ("/end/", "session_end"),
                             ("/for_user/", "flags")):  # fmt: skip
            if self.path.endswith(suffix):
                return kind
        raise AssertionError(f"unknown path {self.path}")

    @property
    def gzipped(self) -> bool:
        return ("Content-Encoding", "gzip") in self.headers


def recorded_requests() -> list[Recorded]:
    """The fenced `http` blocks of the README's "The requests, byte for byte" section."""
    text = README.read_text()
    section = text.split("## The requests, byte for byte", 1)[1].split("\n## ", 1)[0]
    found = []
    for block in re.findall(r"```http\n(.*?)\n```", section, flags=re.S):
        head, body = block.split("\n\n", 1)
        request_line, *header_lines = head.split("\n")
        method, path = request_line.split(" ")
        headers = [tuple(line.split(": ", 1)) for line in header_lines]
        assert "\n" not in body, f"a body is one line, as sent: {body!r}"
        found.append(Recorded(method, path, headers, body))  # type: ignore[arg-type]
    return found


def swift_gzip(data: bytes) -> bytes:
    """Json.swift's gzip: NSData.compressed(using: .zlib) is raw DEFLATE (RFC 1951), framed by
    hand as RFC 1952: a 10-byte header (no flags, mtime 0, OS 255), then CRC-32 and the length,
    little-endian."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflated + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def test_the_readme_records_every_request_the_swift_client_makes():
    requests = recorded_requests()
    assert [r.kind for r in requests] == ["session_start", "batch", "batch", "session_end", "flags"]
    for request in requests:
        assert ("Authorization", f"Bearer {EXAMPLE_KEY}") in request.headers
        assert ("Content-Type", "application/json") in request.headers
        json.loads(request.body)  # every body is JSON as recorded
    batches = [json.loads(r.body) for r in requests if r.kind == "batch"]
    assert all(list(b) == ["sent_at", "events"] for b in batches), "Sender.swift joins queued events in this order"
    events = [e for b in batches for e in b["events"]]
    for event in events:
        # Tidelog.swift's track() encodes with .sortedKeys: the recorded bytes must be what it makes.
        assert list(event) == sorted(event), event
        assert re.fullmatch(r"[0-9a-f-]{36}", event["uuid"]), "uuids lowercased, as Kotlin's and Tidelog's"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
    assert "\\/" not in "".join(r.body for r in requests), "JSONSerialization's escaped slash is turned off"


def test_swifts_hand_made_gzip_is_gzip():
    body = recorded_requests()[1].body.encode()
    framed = swift_gzip(body)
    assert framed[:3] == b"\x1f\x8b\x08"
    assert zlib.decompress(framed, wbits=31) == body  # any gzip reader, CRC and length checked


def send(command_host: str, request: Recorded, key: str) -> tuple[int, Any]:
    headers = {name: value.replace(EXAMPLE_KEY, key) for name, value in request.headers}
    body = request.body.encode()
    if request.gzipped:
        body = swift_gzip(body)
    return http(request.method, command_host + request.path, body, headers)


@pytest.mark.django_db(transaction=True)
def test_the_recorded_requests_are_stored_by_a_live_tidelog_as_the_readme_says(tmp_path, project, redis_client):
    requests = recorded_requests()
    with running_tidelog(tmp_path, interface="rsgi") as (processes, command, query):
        host = command.removesuffix("/api/v1/analytics/")
        answers = [send(host, request, project.api_key) for request in requests]
        assert [status for status, _ in answers] == [201, 200, 200, 200, 200], answers
        session_id = json.loads(requests[0].body)["session_id"]
        assert answers[0][1]["session_id"] == session_id
        assert answers[1][1] == {"accepted": 3, "rejected": []}
        assert answers[2][1] == {"accepted": 1, "rejected": []}
        assert set(answers[4][1]["flags"]) == set()  # this project has no flag: an empty map, not an error
        # A retried start and batch (the app killed before it heard) are stored once.
        assert send(host, requests[0], project.api_key)[0] == 201
        assert send(host, requests[1], project.api_key)[0] == 200
        personal = {"Authorization": f"Bearer {project.personal_api_key}"}
        expected = {"$session_start": 1, "app_opened": 1, "$screen": 1, "$feature_flag_called": 1, "$identify": 1,
                    "$session_end": 1}  # fmt: skip

        def counts() -> dict[str, int]:
            status, body = http("GET", query + "admin/events/event_counts/", headers=personal)
            assert status == 200, body
            return {row["event_type"]: row["count"] for row in body["results"]}

        wait_for(lambda: counts() == expected, lambda: f"counts {counts()} to be {expected}", timeout=60,
                 processes=processes)  # fmt: skip

        def session() -> dict[str, Any] | None:
            status, body = http("GET", query + f"admin/sessions/{session_id}/", headers=personal)
            return body if status == 200 and body["ended_by"] == "explicit" and body["event_count"] >= 5 else None

        stored = wait_for(session, "the recorded session, ended", timeout=60, processes=processes)
        assert (stored["app_version"], stored["os_name"], stored["os_version"]) == ("1.4.0", "iOS", "18.2")
        assert stored["screen_count"] == 1

        def merged() -> dict[str, Any] | None:
            status, body = http("GET", query + "admin/people/?distinct_id=user-42", headers=personal)
            people = body["results"] if status == 200 else []
            return people[0] if people and len(people[0]["distinct_ids"]) == 2 else None

        anonymous = json.loads(requests[2].body)["events"][0]["properties"]["$anon_distinct_id"]
        person = wait_for(merged, "user-42 merged with the anonymous id", timeout=60, processes=processes)
        assert sorted(person["distinct_ids"]) == sorted(["user-42", anonymous])


def shape(request: Any) -> tuple[Any, ...]:
    """What must match between the two clients: method, path (session id aside), header names,
    and the body's keys (each event's, and whether it has properties)."""
    path = re.sub(r"/session/[^/]+/end/", "/session/<id>/end/", request.path)
    names = tuple(sorted(name for name, _ in (request.headers if isinstance(request.headers, list) else
                                              request.headers.items()) if name in SENT_HEADERS))  # fmt: skip
    body = json.loads(request.body) if isinstance(request.body, str) else request.body
    if "events" in body:
        return (
            request.method,
            path,
            names,
            tuple(sorted(body)),
            tuple(sorted({tuple(sorted(e)) for e in body["events"]})),
        )
    return request.method, path, names, tuple(sorted(body))


SENT_HEADERS = {"Authorization", "Content-Type", "Content-Encoding", "User-Agent"}


@pytest.mark.skipif(kotlinc_missing() is not None, reason=kotlinc_missing() or "")
def test_the_kotlin_client_sends_the_requests_the_swift_client_is_recorded_sending(tmp_path):
    recorded = {r.kind: shape(r) for r in recorded_requests()}
    with scripted_server() as server:
        flag = {"key": "onboarding", "enabled": True, "variant": "short", "payload": None}
        server.scripts["flags"] = [(200, {}, {"distinct_id": "x", "flags": {"onboarding": flag}})]
        demo = DemoApp(build_demo(), tmp_path, server.url, EXAMPLE_KEY, flush_at="3", session_timeout="1")
        demo.do("foreground")
        wait_for(lambda: server.of("flags"), "the flags fetched at start")
        # The server has the request; the app holds the answer once it has cached it (Flags.kt
        # sets it in memory, then writes flags.json). Asked before, the flag is still "false".
        wait_for(lambda: (tmp_path / "flags.json").exists(), "the flags answer cached")
        demo.do("track app_opened")
        demo.do("screen Checkout")
        assert demo.value("flag onboarding") == "short"
        assert demo.value("drain 10") == "true"
        demo.do("identify user-42")
        demo.do("background")
        time.sleep(1.2)
        demo.do("foreground")
        assert demo.value("drain 10") == "true"
        demo.exit()
    sent: dict[str, list[Any]] = {}
    for request in server.requests:
        sent.setdefault(request.kind, []).append(request)
    assert sent["batch"][0].headers["User-Agent"] == "tidelog-kotlin/0.1"
    kotlin = {
        "session_start": shape(sent["session_start"][0]),
        "session_end": shape(sent["session_end"][0]),
        "flags": shape(sent["flags"][-1]),
    }
    for kind in kotlin:
        assert kotlin[kind] == recorded[kind], kind
    # The batches: the same fields on the same kinds of event. As sets: how the Kotlin client's
    # events split into batches depends on when its thread wakes (a flush at flushAt may go before
    # or after the exposure is queued), not on what each request holds.
    kotlin_batches = {shape(r) for r in sent["batch"]}
    recorded_batches = {shape(r) for r in recorded_requests() if r.kind == "batch"}
    assert kotlin_batches == recorded_batches
