"""Slow request bodies never stall the command API: a real granian process started as `make run`
starts it (bin/tidelog-run's argv), a handful of connections that declare a body and stall, and
normal captures that must keep being answered while the stalled ones are cut at the deadline."""

import importlib.machinery
import importlib.util
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.command_helpers import make_event
from tests.process_helpers import free_port, process_env

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
BODY_TIMEOUT = 2.0
CAPTURE = "/api/v1/analytics/capture/"


def make_run_argv(port: int) -> list[str]:
    """The command API's argv exactly as bin/tidelog-run builds it, on `port`."""
    loader = importlib.machinery.SourceFileLoader("tidelog_run", str(REPO / "bin" / "tidelog-run"))
    spec = importlib.util.spec_from_loader("tidelog_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    argv: list[str] = module.processes(settings)["command-api"]
    argv[argv.index("--port") + 1] = str(port)
    return argv


@pytest.fixture
def command_api(redis_client) -> Iterator[int]:  # type: ignore[no-untyped-def]
    port = free_port()
    env = process_env(
        DJANGO_SETTINGS_MODULE="core.settings_command",
        TIDELOG_BODY_READ_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        TIDELOG_LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(make_run_argv(port), cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, "the command API exited at start"
            time.sleep(0.1)
        yield port
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=15)


def post_capture(port: int, key: str) -> tuple[int, float]:
    """One capture on a fresh connection: (status, seconds). Gives up after 10 s."""
    body = json.dumps(make_event()).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST {CAPTURE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        head = s.recv(65536)
    return int(head[9:12]), time.monotonic() - started


class StalledBody(threading.Thread):
    """Declares a 1,000-byte body, sends 13 bytes of it, then sends nothing more."""

    def __init__(self, port: int, key: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(
            f"POST {CAPTURE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event_type"'.encode()
        )
        self.sent_at = time.monotonic()
        self.answer = b""
        self.answered_after: float | None = None
        self.closed = False

    def run(self) -> None:
        try:
            self.answer = self.sock.recv(65536)
            self.answered_after = time.monotonic() - self.sent_at
            self.closed = self.sock.recv(65536) == b""  # the server hung up after its answer
        except OSError:
            pass
        finally:
            self.sock.close()


def test_stalled_bodies_neither_hold_up_captures_nor_stay_open(command_api, project):
    assert post_capture(command_api, project.api_key)[0] == 200  # warm: key cached, Redis connected

    stalled = [StalledBody(command_api, project.api_key) for _ in range(6)]  # 3x the make run workers
    for connection_ in stalled:
        connection_.start()

    # Captures keep coming while the stalled bodies hold their connections, and past the deadline.
    answers = []
    until = time.monotonic() + BODY_TIMEOUT + 1.5
    while time.monotonic() < until:
        answers.append(post_capture(command_api, project.api_key))
        time.sleep(0.05)

    assert len(answers) >= 10
    assert {status for status, _ in answers} == {200}
    # Generous: a capture takes milliseconds; a stalled API would take until the client gives up.
    assert max(seconds for _, seconds in answers) < 2.0

    for connection_ in stalled:
        connection_.join(timeout=10)
        assert connection_.answer.startswith(b"HTTP/1.1 408 "), connection_.answer
        assert b'"code":"body_timeout"' in connection_.answer
        assert connection_.answered_after is not None
        assert BODY_TIMEOUT - 0.1 <= connection_.answered_after < BODY_TIMEOUT + 2
        assert connection_.closed
