"""The Python example client (sdk_examples/python): its sending rules against a scripted HTTP
server, its durable queue, its sessions on an injected clock, and the whole of it against a live
Tidelog whose query API must show each event exactly once."""

import gzip
import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tidelog_sdk import Tidelog, TidelogConfig
from tidelog_sdk.event_queue import EVENT, FileQueue
from tidelog_sdk.transport import Answer, UrllibTransport
from tidelog_sdk.wire import timestamp

from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import free_port, wait_for

START = 1_800_000_000.0  # 2027-01-15, the injected clock's first reading
NOWHERE = f"http://127.0.0.1:{free_port()}"  # nothing listens: requests fail at once


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the JSON, gunzipped when it came gzipped


@dataclass
class Script:
    """What the server answers, in order (status, headers, JSON body); 200 once they run out."""

    answers: deque[tuple[int, dict[str, str], Any]] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)

    def then(self, status: int, body: Any = None, **headers: str) -> "Script":
        self.answers.append((status, {name.replace("_", "-"): value for name, value in headers.items()}, body))
        return self


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            script.requests.append(Request(self.command, self.path, dict(self.headers), json.loads(raw)))
            status, headers, body = script.answers.popleft() if script.answers else (200, {}, None)
            content = json.dumps(body if body is not None else {"accepted": 1, "rejected": []}).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_POST = do_PUT = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def make_client(host: str, clock: Clock, storage: Path | None = None, **settings: Any) -> Tidelog:
    config = TidelogConfig(host=host, api_key="tlp_test", storage_dir=storage, app_version="1.2.3", **settings)
    return Tidelog(config, clock=clock, rng=random.Random(7))


def batches(script: Script) -> list[Request]:
    return [request for request in script.requests if request.path == "/api/v1/analytics/batch/"]


# --- the answer table ----------------------------------------------------------------------------


def test_a_batch_is_gzipped_json_of_the_documented_shape_stamped_at_each_send(scripted):
    host, script = scripted
    script.then(500)
    clock = Clock()
    client = make_client(host, clock)
    uuids = [client.track("app_opened", {"n": n}) for n in range(3)]
    clock.now += 5
    assert client.sender.send_once() is True
    clock.now = client.sender.retry_at
    assert client.sender.send_once() is True
    assert len(client.queue) == 0
    first, second = batches(script)
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Authorization"] == "Bearer tlp_test"
    assert first.headers["Content-Type"] == "application/json"
    assert set(first.body) == {"sent_at", "events"}
    assert first.body["sent_at"] == timestamp(START + 5)  # stamped when sent, not when tracked
    assert second.body["sent_at"] == timestamp(clock.now) != first.body["sent_at"]
    assert [event["uuid"] for event in first.body["events"]] == uuids
    assert second.body["events"] == first.body["events"]
    event = first.body["events"][0]
    assert event["event_type"] == "app_opened"
    assert event["timestamp"] == timestamp(START) == "2027-01-15T08:00:00.000Z"
    assert event["properties"] == {"n": 0}
    assert event["app_version"] == "1.2.3"
    assert event["distinct_id"] == client.distinct_id
    assert event["device_id"] == client.device_id
    assert {"os_name", "os_version"} <= set(event)


def test_503_with_retry_after_waits_at_least_that_long(scripted):
    host, script = scripted
    script.then(503, {"code": "buffer_full"}, Retry_After="7").then(429, Retry_After="2")
    clock = Clock()
    client = make_client(host, clock)
    client.track("app_opened")
    client.flush()
    assert len(script.requests) == 1 and len(client.queue) == 1
    assert 7 <= client.sender.retry_at - START <= 7 * 1.2
    clock.now = START + 6.99
    assert client.sender.send_once() is False
    client.flush()
    assert len(script.requests) == 1
    clock.now = client.sender.retry_at
    client.flush()  # the 429
    assert len(script.requests) == 2 and len(client.queue) == 1
    assert 2 <= client.sender.retry_at - clock.now <= 2.4
    clock.now = client.sender.retry_at
    client.flush()
    assert len(script.requests) == 3 and len(client.queue) == 0


def test_400_deletes_the_batch_and_goes_on(scripted):
    host, script = scripted
    script.then(400, {"code": "invalid_json", "field": None, "message": "no"})
    clock = Clock()
    client = make_client(host, clock, flush_at=2)
    for _ in range(3):
        client.track("app_opened")
    client.flush()
    assert [len(request.body["events"]) for request in batches(script)] == [2, 1]
    assert len(client.queue) == 0
    assert client.sender.refused_requests == 2
    assert client.sender.retry_at == 0.0  # no wait


def test_413_splits_a_batch_in_half_and_deletes_a_single_request(scripted):
    host, script = scripted
    script.then(413).then(200).then(200).then(413)
    clock = Clock()
    client = make_client(host, clock)
    uuids = [client.track("app_opened") for _ in range(5)]
    client.flush()
    sent = [[event["uuid"] for event in request.body["events"]] for request in batches(script)]
    assert sent == [uuids, uuids[:2], uuids[2:]]
    assert len(client.queue) == 0 and client.sender.refused_requests == 0
    assert client.sender.batch_limit == 8  # halved to 2, then doubled by each of two successes
    client.track("app_opened", {"huge": True})
    client.flush()
    assert len(batches(script)) == 4 and len(client.queue) == 0
    assert client.sender.refused_requests == 1


def test_401_5xx_and_no_answer_keep_everything_and_back_off_longer_each_time(scripted):
    host, script = scripted
    script.then(401).then(500).then(404).then(503)  # a 503 without Retry-After backs off
    clock = Clock()
    client = make_client(host, clock, base_backoff_seconds=1, max_backoff_seconds=20)
    client.on_foreground()  # a session start, then events: all kept
    for _ in range(3):
        client.track("app_opened")
    waits = []
    for _ in range(4):
        assert client.sender.send_once() is True
        waits.append(client.sender.retry_at - clock.now)
        assert client.sender.send_once() is False  # backing off
        clock.now = client.sender.retry_at
    assert len(client.queue) == 4
    # Nothing answers at all (a port nobody listens on): kept, the backoff goes on growing.
    client.sender.config = TidelogConfig(**{**vars(client.config), "host": f"http://127.0.0.1:{free_port()}"})
    for _ in range(2):
        assert client.sender.send_once() is True
        waits.append(client.sender.retry_at - clock.now)
        clock.now = client.sender.retry_at
    assert len(client.queue) == 4
    for failure, wait in enumerate(waits, start=1):
        ceiling = min(20, 2 ** (failure - 1))
        assert ceiling * 0.5 <= wait <= ceiling, (failure, waits)
    assert waits[5] > waits[0] * 8
    # A success resets the backoff: the next failure waits a base again.
    client.sender.config = client.config
    script.then(201, {"session_id": "x", "uuid": "y"}).then(500)
    client.flush()
    assert [request.path for request in script.requests[-2:]] == ["/api/v1/analytics/session/start/",
                                                                  "/api/v1/analytics/batch/"]  # fmt: skip
    assert 0.5 <= client.sender.retry_at - clock.now <= 1
    assert len(client.queue) == 3


def test_events_the_server_rejects_one_by_one_are_deleted_with_their_batch(scripted):
    host, script = scripted
    rejected = {"index": 1, "code": "invalid_timestamp", "field": "timestamp", "message": "bad"}
    script.then(200, {"accepted": 1, "rejected": [rejected]})
    client = make_client(host, Clock())
    client.track("a")
    client.track("b")
    client.flush()
    assert len(client.queue) == 0 and len(batches(script)) == 1
    assert client.sender.rejected_events == 1


def test_session_requests_go_alone_as_plain_json_to_their_endpoints(scripted):
    host, script = scripted
    clock = Clock()
    client = make_client(host, clock)
    client.on_foreground()
    client.track("app_opened")
    first_session = client.sessions.session_id
    client.reset()  # ends the session and starts another; fetches the flags at once (never queued)
    clock.now += 3
    client.flush()
    second_session = client.sessions.session_id
    assert [(request.method, request.path) for request in script.requests] == [
        ("POST", "/api/v1/analytics/public/feature-flags/for_user/"),
        ("POST", "/api/v1/analytics/session/start/"),
        ("POST", "/api/v1/analytics/batch/"),
        ("PUT", f"/api/v1/analytics/session/{first_session}/end/"),
        ("POST", "/api/v1/analytics/session/start/"),
    ]
    start, batch, end, restart = script.requests[1:]
    assert "Content-Encoding" not in start.headers
    assert start.body["session_id"] == first_session
    assert start.body["timestamp"] == timestamp(START)
    assert start.body["sent_at"] == timestamp(START + 3)
    assert batch.body["events"][0]["session_id"] == first_session
    assert end.body["timestamp"] == timestamp(START) and end.body["sent_at"] == timestamp(START + 3)
    assert end.body["distinct_id"] == start.body["distinct_id"] != restart.body["distinct_id"]
    assert restart.body["session_id"] == second_session != first_session


# --- the durable queue ----------------------------------------------------------------------------


def test_a_new_file_queue_reads_what_the_last_one_wrote_in_the_same_order(tmp_path):
    clock = Clock()
    queue = FileQueue(tmp_path, max_size=100, clock=clock)
    for n in range(5):
        queue.add(EVENT, {"n": n})
    queue.add("session_end s-1", {"n": 5})
    clock.now -= 60  # the clock went back: the order stays the order of adding
    queue.add(EVENT, {"n": 6})
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names[0] == f"{int(START * 1000):013d}-000000.req"
    (tmp_path / "9999999999999-000000.req.tmp").write_bytes(b"event\n{")  # a write a kill cut short
    again = FileQueue(tmp_path, max_size=100, clock=clock)
    assert not list(tmp_path.glob("*.tmp"))
    items = again.peek(10)
    assert [item.body["n"] for item in items] == list(range(7))
    assert items[5].kind == "session_end s-1"
    again.remove(items[:2])
    again.add(EVENT, {"n": 7})
    assert [item.body["n"] for item in FileQueue(tmp_path, max_size=100, clock=clock).peek(10)] == [2, 3, 4, 5, 6, 7]


def test_a_full_queue_drops_its_oldest_and_counts_them(tmp_path):
    queue = FileQueue(tmp_path, max_size=3, clock=Clock())
    for n in range(5):
        queue.add(EVENT, {"n": n})
    assert len(queue) == 3 and queue.dropped == 2
    assert len(list(tmp_path.iterdir())) == 3
    assert [item.body["n"] for item in queue.peek(10)] == [2, 3, 4]


def test_the_client_keeps_its_queue_across_a_restart(tmp_path, scripted):
    host, script = scripted
    script.then(500)
    clock = Clock()
    client = make_client(host, clock, tmp_path)
    uuids = [client.track("app_opened") for _ in range(3)]
    client.flush()  # refused: kept on disk
    del client
    clock.now += 3600
    restarted = make_client(host, clock, tmp_path)
    restarted.flush()
    assert [event["uuid"] for event in batches(script)[-1].body["events"]] == uuids
    assert len(restarted.queue) == 0


# --- sessions -------------------------------------------------------------------------------------


def test_sessions_resume_under_the_timeout_and_restart_past_it(tmp_path):
    clock = Clock()
    client = make_client(NOWHERE, clock, tmp_path)
    client.on_foreground()
    first = client.sessions.session_id
    assert first is not None
    clock.now += 100
    client.on_background()  # its flush finds nothing listening: kept
    clock.now += 1799
    client.on_foreground()
    assert client.sessions.session_id == first
    clock.now += 10
    client.on_background()
    backgrounded_at = clock.now
    clock.now += 1800
    # A cold start in the background: the session and its background time are on disk.
    client = make_client(NOWHERE, clock, tmp_path)
    assert client.sessions.session_id == first
    client.on_foreground()
    second = client.sessions.session_id
    assert second not in (None, first)
    kinds = [(item.kind, item.body) for item in client.queue.peek(10)]
    assert [kind for kind, _ in kinds] == ["session_start", f"session_end {first}", "session_start"]
    assert kinds[1][1]["timestamp"] == timestamp(backgrounded_at)
    assert kinds[2][1]["timestamp"] == timestamp(clock.now)
    assert kinds[2][1]["session_id"] == second
    assert client.track("app_opened") and client.queue.peek(10)[-1].body["session_id"] == second
    # The state itself survives: a new client on the same folder is the same install.
    again = make_client(NOWHERE, clock, tmp_path)
    assert (again.distinct_id, again.device_id, again.sessions.session_id) == (
        client.distinct_id, client.device_id, second,
    )  # fmt: skip


def test_a_process_killed_in_the_foreground_ends_its_session_when_it_was_last_active(tmp_path):
    clock = Clock()
    client = make_client(NOWHERE, clock, tmp_path)
    client.on_foreground()
    first = client.sessions.session_id
    clock.now += 120
    client.track("app_opened")  # the last sign of life
    clock.now += 7200  # killed without a background; started again two hours later
    client = make_client(NOWHERE, clock, tmp_path)
    client.on_foreground()
    ends = [item for item in client.queue.peek(10) if item.kind.startswith("session_end")]
    assert [(item.kind, item.body["timestamp"]) for item in ends] == [(f"session_end {first}", timestamp(START + 120))]
    assert client.sessions.session_id != first


# --- flags ----------------------------------------------------------------------------------------


def for_user(flags: dict[str, Any]) -> dict[str, Any]:
    return {"distinct_id": "x", "flags": {key: {"key": key, "enabled": enabled, "variant": variant, "payload": payload,
                                                "reason": "condition_match", "condition_index": 0}
                                          for key, (enabled, variant, payload) in flags.items()}}  # fmt: skip


def test_flags_bootstrap_cache_and_report_each_exposure_once(tmp_path, scripted):
    host, script = scripted
    clock = Clock()
    client = make_client(host, clock, tmp_path, bootstrap_flags={"beta": True, "checkout": "control"})
    assert client.is_enabled("beta") is True and client.get_variant("checkout") == "control"
    script.then(200, for_user({"beta": (False, None, None), "checkout": (True, "test", {"colour": "red"})}))
    client.fetch_flags()
    assert script.requests[-1].body == {"distinct_id": client.distinct_id, "person_properties": {}}
    assert client.is_enabled("beta") is False
    assert client.get_variant("checkout") == "test"
    assert client.get_payload("checkout") == {"colour": "red"}
    # A cold start, offline: flags.json answers, and exposures already reported stay reported.
    script.then(503, Retry_After="1")
    client = make_client(host, clock, tmp_path, bootstrap_flags={"beta": True})
    client.fetch_flags()
    assert client.is_enabled("beta") is False and client.get_variant("checkout") == "test"
    exposures = [item.body["properties"] for item in client.queue.peek(100) if item.body.get("event_type") == "$feature_flag_called"]  # fmt: skip
    assert exposures == [
        {"$feature_flag": "beta", "$feature_flag_response": True},
        {"$feature_flag": "checkout", "$feature_flag_response": "control"},
        {"$feature_flag": "beta", "$feature_flag_response": False},
        {"$feature_flag": "checkout", "$feature_flag_response": "test"},
    ]
    # Another user sees the same values anew.
    script.then(200, for_user({"beta": (False, None, None)}))
    client.identify("user-1")
    client.is_enabled("beta")
    last = client.queue.peek(100)[-1].body
    assert (last["event_type"], last["distinct_id"]) == ("$feature_flag_called", "user-1")


def test_identify_and_reset_change_the_distinct_id(scripted):
    host, _script = scripted
    clock = Clock()
    client = make_client(host, clock)
    anonymous = client.distinct_id
    client.screen("Home", {"tab": 2})
    client.identify("user-9", set={"plan": "pro"}, set_once={"first_seen": "today"})
    client.reset()
    events = [item.body for item in client.queue.peek(10)]
    assert [(event["event_type"], event["distinct_id"]) for event in events] == [
        ("$screen", anonymous),
        ("$identify", "user-9"),
    ]
    assert events[0]["properties"] == {"tab": 2, "$screen_name": "Home"}
    assert events[1]["properties"] == {"$anon_distinct_id": anonymous, "$set": {"plan": "pro"},
                                       "$set_once": {"first_seen": "today"}}  # fmt: skip
    assert client.distinct_id not in (anonymous, "user-9")


# --- live -----------------------------------------------------------------------------------------


class LosesTheFirstBatchAnswer:
    """The app killed, or the network lost, after the server stored a batch but before its answer
    arrived: the batch goes through, and its sender hears nothing."""

    def __init__(self) -> None:
        self.inner = UrllibTransport()
        self.lost = 0

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        answer = self.inner.send(method, url, body, headers)
        if url.endswith("/batch/") and not self.lost:
            self.lost += 1
            assert answer.status == 200, answer
            raise ConnectionResetError("the answer was lost")
        return answer


@pytest.mark.django_db(transaction=True)
def test_live_every_event_is_stored_once_retries_included(tmp_path, redis_client, project):
    with running_tidelog(tmp_path, interface="wsgi") as (processes, command, query):
        admin = {"Authorization": f"Bearer {project.personal_api_key}", "Content-Type": "application/json"}
        flag = {"key": "beta", "enabled": True, "rollout_percentage": 100}
        status, body = http("POST", command + "admin/feature-flags/", json.dumps(flag).encode(), admin)
        assert status == 201, body

        transport = LosesTheFirstBatchAnswer()
        clock = Clock(time.time())
        config = TidelogConfig(host=command.removesuffix("/api/v1/analytics/"), api_key=project.api_key,
                               storage_dir=tmp_path / "app", app_version="2.0.0")  # fmt: skip
        client = Tidelog(config, transport=transport, clock=clock)
        client.on_foreground()
        session = client.sessions.session_id
        uuids = [client.track("app_opened", {"n": n}) for n in range(5)]
        uuids.append(client.screen("Home"))
        client.identify("user-live", set={"plan": "pro"})

        # The flag is evaluated for the user identify() fetched it for; read twice, reported once.
        def knows_beta() -> bool:
            client.fetch_flags()
            return client.flags.value("beta") is True

        wait_for(knows_beta, "for_user to answer beta")
        assert client.is_enabled("beta") and client.is_enabled("beta")
        client.flush()
        assert transport.lost == 1 and len(client.queue) == 8  # the start sent; the batch kept
        clock.now = client.sender.retry_at
        client.flush()  # the same batch again, the same uuids
        assert len(client.queue) == 0
        client.reset()  # ends the session, starts another
        client.flush()
        assert len(client.queue) == 0

        personal = {"Authorization": f"Bearer {project.personal_api_key}"}
        expected = {"app_opened": 5, "$screen": 1, "$identify": 1, "$feature_flag_called": 1,
                    "$session_start": 2, "$session_end": 1}  # fmt: skip
        seen: dict[str, Any] = {}

        def counted() -> bool:
            status, body = http("GET", query + "admin/events/event_counts/", headers=personal)
            assert status == 200, body
            seen["counts"] = {row["event_type"]: row["count"] for row in body["results"]}
            return bool(seen["counts"] == expected)

        wait_for(counted, lambda: f"event_counts to reach {expected}: {seen.get('counts')}", timeout=60,
                 processes=processes)  # fmt: skip
        status, body = http("GET", query + "admin/events/?limit=1000", headers=personal)
        assert status == 200, body
        stored = [event["uuid"] for event in body["results"]]
        assert len(stored) == len(set(stored)) == 11
        assert set(uuids) <= set(stored)
        by_uuid = {event["uuid"]: event for event in body["results"]}
        assert by_uuid[uuids[0]]["session_id"] == session
        assert by_uuid[uuids[0]]["app_version"] == "2.0.0"
        assert by_uuid[uuids[-1]]["properties"]["$screen_name"] == "Home"

        def sessions() -> list[dict[str, Any]]:
            status, body = http("GET", query + "admin/sessions/?limit=100", headers=personal)
            assert status == 200, body
            return list(body["results"])

        def ended() -> dict[str, Any] | None:
            return next(
                (row for row in sessions() if row["session_id"] == session and row["ended_by"] == "explicit"), None
            )

        row = wait_for(ended, lambda: f"the session {session} to end: {sessions()}", timeout=60, processes=processes)
        assert (row["event_count"], row["screen_count"], row["app_version"]) == (10, 1, "2.0.0")
