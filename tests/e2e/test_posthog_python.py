"""PostHog's own Python SDK (`posthog` from PyPI, pinned in pyproject.toml), unchanged but for its
host, against a live Tidelog (every process, the command API as `make run` serves it): events,
person properties and aliases land in Tidelog's read models; flags answer as Tidelog's own
for_user does, evaluated remotely and locally; a batch the SDK sends again after losing the
answer is stored once."""

import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import posthog
import pytest

from tests.e2e.posthog_sdks import USERS, host_of, query_get, tidelog_for_user, tidelog_with_flags
from tests.process_helpers import free_port, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # get_feature_flag and friends are deprecated for evaluate_flags, but still what most apps call.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:tests.e2e.test_posthog_python"),
]


@pytest.fixture
def tidelog(tmp_path, redis_client, project):
    with tidelog_with_flags(tmp_path, project) as stack:
        yield stack


def client(project: Any, host: str, **options: Any) -> posthog.Posthog:
    return posthog.Posthog(project.api_key, host=host, sync_mode=True, max_retries=3, **options)


def test_events_people_and_aliases_from_the_python_sdk_reach_the_read_models(tidelog, project):
    _, command, query = tidelog
    sdk = client(project, host_of(command))
    sdk.capture("app_opened", distinct_id="anon-1", properties={"$app_version": "2.1.0", "screen": "home"})
    sdk.capture("app_opened", distinct_id="anon-1", properties={"$session_id": "s-1", "$set_once": {"source": "ad"}})
    sdk.set(distinct_id="user-1", properties={"plan": "pro"})
    sdk.alias(previous_id="anon-1", distinct_id="user-1")
    sdk.capture("purchase_completed", distinct_id="user-1", properties={"amount": 12})
    sdk.flush()

    def counts() -> dict[str, int]:
        body = query_get(query, project, "admin/events/event_counts/")
        return {row["event_type"]: row["count"] for row in body["results"]}

    wanted = {"app_opened": 2, "$set": 1, "$create_alias": 1, "purchase_completed": 1}
    wait_for(lambda: counts() == wanted, f"the query API to count {wanted}")
    events = query_get(query, project, "admin/events/?distinct_id=anon-1")["results"]
    first = next(e for e in events if e["properties"].get("screen") == "home")
    # The SDK adds its own `$os` (the machine's): Tidelog's os_name column is it.
    assert (first["app_version"], first["os_name"]) == ("2.1.0", first["properties"]["$os"])
    assert first["os_name"]
    assert any(e["session_id"] == "s-1" for e in events)

    def person() -> dict[str, Any] | None:
        found = query_get(query, project, "admin/people/?distinct_id=anon-1")["results"]
        return found[0] if found and len(found[0]["distinct_ids"]) == 2 else None

    merged = wait_for(person, "the alias to merge anon-1 and user-1")
    assert sorted(merged["distinct_ids"]) == ["anon-1", "user-1"]
    assert merged["properties"] == {"plan": "pro", "source": "ad"}


def test_flags_answer_as_tidelogs_own_evaluation_remotely_and_locally_and_count_as_exposures(tidelog, project):
    _, command, query = tidelog
    remote = client(project, host_of(command), enable_local_evaluation=False)
    local = client(project, host_of(command), secret_key=project.personal_api_key)
    local.load_feature_flags()
    assert sorted(flag["key"] for flag in local.feature_flags) == ["beta", "checkout", "off", "vip"]
    for distinct_id, properties in USERS:
        expected = tidelog_for_user(command, project, distinct_id, properties)
        for key in ("beta", "checkout", "vip", "off"):
            tidelog = expected[key]["variant"] or expected[key]["enabled"]
            assert remote.get_feature_flag(key, distinct_id, person_properties=properties) == tidelog, key
            assert local.get_feature_flag(key, distinct_id, person_properties=properties) == tidelog, key
            payload = expected[key]["payload"] if expected[key]["enabled"] else None
            assert remote.get_feature_flag_payload(key, distinct_id, person_properties=properties) == payload
        # The newer API: one /flags/ request for all of them.
        evaluated = remote.evaluate_flags(distinct_id, person_properties=properties)
        for key in ("beta", "checkout", "vip", "off"):
            assert evaluated.get_flag(key) == (expected[key]["variant"] or expected[key]["enabled"]), key

    # The SDKs' $feature_flag_called events are Tidelog's exposures: every user was exposed to beta.
    def exposed() -> int:
        body = query_get(query, project, "admin/feature-flags/beta/exposures/")
        return sum(row["users"] for row in body["users"])

    wait_for(lambda: exposed() == len(USERS), f"the exposures of beta to count {len(USERS)} users")
    # Locally, but for the flag whose override PostHog's format cannot hold: the SDK asks the server.
    assert local.get_feature_flag("beta", "user-3", person_properties={}, only_evaluate_locally=True) in (True, False)
    assert local.get_feature_flag("vip", "user-3", only_evaluate_locally=True) is None
    assert local.get_feature_flag("vip", "user-3") is True


class DropFirstAnswer:
    """A TCP proxy that forwards every request to the server, and for the first request to
    `path` hangs up instead of passing the answer back: the request was stored, the SDK never
    heard so, and sends the same batch again."""

    def __init__(self, target_port: int, path: str) -> None:
        self.port, self.target_port, self.path = free_port(), target_port, path.encode()
        self.dropped = 0
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            conn.settimeout(10)
            request = _read_request(conn)
            upstream.sendall(request)
            answer = _read_response(upstream)
            if request.split(b" ", 2)[1].startswith(self.path) and self.dropped == 0:
                self.dropped += 1
                return  # hang up: the SDK sees a dropped connection
            conn.sendall(answer)

    def close(self) -> None:
        self.server.close()


def _read_until_body(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _read_request(sock: socket.socket) -> bytes:
    head, body = _read_until_body(sock)
    while len(body) < _content_length(head):
        body += sock.recv(65536)
    # One request per connection: the proxy needs no keep-alive.
    head = (
        b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))
        + b"\r\nConnection: close"
    )
    return head + b"\r\n\r\n" + body


def _read_response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def dropping_proxy(tidelog) -> Iterator[DropFirstAnswer]:
    _, command, _ = tidelog
    proxy = DropFirstAnswer(urllib.parse.urlsplit(command).port or 80, "/batch/")
    yield proxy
    proxy.close()


def test_a_batch_the_sdk_sends_again_after_a_lost_answer_is_stored_once(tidelog, dropping_proxy, project):
    _, _, query = tidelog
    sdk = posthog.Posthog(project.api_key, host=f"http://127.0.0.1:{dropping_proxy.port}", max_retries=3)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for n, event_uuid in enumerate(ids):
        sdk.capture("retried", distinct_id=f"r-{n}", uuid=event_uuid)
    sdk.flush()
    sdk.shutdown()
    assert dropping_proxy.dropped == 1

    def stored() -> int:
        body = query_get(query, project, "admin/events/event_counts/")
        return sum(row["count"] for row in body["results"] if row["event_type"] == "retried")

    wait_for(lambda: stored() == 5, "the five events to be stored")
    events = query_get(query, project, "admin/events/?event_type=retried")["results"]
    assert sorted(e["uuid"] for e in events) == sorted(ids)
