"""A whole Tidelog (`bin/tidelog-run`: its supervisor and every process) on a PostgreSQL and a Redis
of its own, for fault tests that stop, start and kill them. Loopback only, free ports, a temp dir;
everything is stopped and removed afterwards. The shared servers are never touched.
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def _as_postgres(command: str) -> None:
    argv = ["su", "postgres", "-c", command] if os.getuid() == 0 else ["bash", "-c", command]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        self.data = root / "pg"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/tidelog"
        # initdb refuses root: as root (this machine) the cluster belongs to the postgres user.
        if os.getuid() == 0:
            shutil.chown(root, "postgres")
        _as_postgres(f"{self.bin}/initdb -D {self.data} -U postgres --auth=trust -E UTF8")
        self.start()
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE tidelog")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(f"{self.bin}/pg_ctl -D {self.data} -l {self.data}/log -o '{options}' -w start")

    def stop(self) -> None:
        _as_postgres(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _as_postgres(f"{self.bin}/pg_ctl -D {self.data} -m immediate -w stop")

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)


class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        # Append-only with an fsync per write: what was accepted before a stop is there after it.
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             # CONFIG SET dir, for a test that makes snapshots fail (MISCONF).
             "--enable-protected-configs", "local"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: self.cli("ping") == "PONG", 10, "Redis to answer")

    def pending_by_consumer(self) -> dict[str, int]:
        """Entries read but not acknowledged, by drainer (consumer names end in -pid-slot)."""
        client = redis_lib.Redis(port=self.port, socket_timeout=2, decode_responses=True)
        try:
            consumers = client.xinfo_consumers("tidelog:events", "drainers")
        except redis_lib.ResponseError:
            return {}
        finally:
            client.close()
        return {c["name"]: int(c["pending"]) for c in consumers}

    def cli(self, *args: str) -> str:
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    def stop(self) -> None:
        assert self.process is not None
        self.cli("shutdown")
        self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@dataclass
class Sent:
    statuses: list[tuple[float, int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    accepted: dict[str, float] = field(default_factory=dict)  # uuid -> when its 200 came


class Stack:
    """bin/tidelog-run started against the private servers; its output kept for the test."""

    def __init__(self, root: Path, postgres: PrivatePostgres, redis: PrivateRedis, **settings: str) -> None:
        self.postgres = postgres
        self.redis = redis
        self.command_port = free_port()
        self.query_port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "TIDELOG_REDIS_PREFIX": "tidelog",
            "TIDELOG_COMMAND_PORT": str(self.command_port),
            "TIDELOG_QUERY_PORT": str(self.query_port),
            "TIDELOG_COMMAND_WORKERS": "1",
            "TIDELOG_QUERY_WORKERS": "1",
            **settings,
        }
        self.env.pop("TIDELOG_FAULT", None)
        # As in production, each entry point picks its settings (the command API its own lean
        # ones): a DJANGO_SETTINGS_MODULE here (pytest's) would give it the query API's URL root.
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.lines: list[str] = []
        self.log = open(root / "tidelog-run.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "bin" / "tidelog-run")],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: self.get_status("/api/v1/analytics/capture/") == 405, 60, "the command API")
        wait_for(lambda: self.get_status("/admin/login/", query=True) == 200, 60, "the query API")
        created = subprocess.run(
            [sys.executable, "manage.py", "create_project", "Outages", "--json"],
            cwd=REPO, env=self.env, check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        issued = json.loads(created.stdout)
        self.api_key: str = issued["api_key"]
        self.personal_key: str = issued["personal_api_key"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode(errors="replace"))
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()

    def said(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in list(self.lines) if (m := re.search(pattern, line))]

    def pid_of(self, name: str) -> int:
        return int(self.said(rf"started {name} \(pid (\d+)\)")[-1].group(1))

    def request(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, query: bool = False
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        port = self.query_port if query else self.command_port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            try:
                decoded = json.loads(data) if data else {}
            except ValueError:
                decoded = {"not_json": data[:200].decode(errors="replace")}
            return response.status, decoded, {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()

    def get_status(self, path: str, *, query: bool = False) -> int:
        try:
            return self.request("GET", path, query=query)[0]
        except OSError:
            return 0

    def send_batch(self, sent: Sent, size: int = 20, key: str | None = None) -> int:
        events = [
            {"event_type": "screen_viewed", "distinct_id": "outage-user", "uuid": str(uuid.uuid4()),
             "timestamp": datetime.now(UTC).isoformat()}
            for _ in range(size)
        ]  # fmt: skip
        try:
            status, body, headers = self.request("POST", "/api/v1/analytics/batch/", {"events": events},
                                                 key=key or self.api_key)  # fmt: skip
        except OSError:
            status, body, headers = 0, {}, {}
        now = time.monotonic()
        sent.statuses.append((now, status, body, headers))
        if status == 200:
            for event in events:
                sent.accepted[event["uuid"]] = now
        return status

    @contextlib.contextmanager
    def sending(self, every: float = 0.02, size: int = 20) -> Iterator[Sent]:
        """Batches sent continuously from a thread while the block runs."""
        sent = Sent()
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.send_batch(sent, size)
                time.sleep(every)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield sent
        finally:
            stop.set()
            thread.join(timeout=15)

    def stored(self, uuids: list[str]) -> tuple[int, int]:
        """(rows, distinct uuids) among `uuids` in the event store."""
        with self.postgres.connect() as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT uuid) FROM tidelog_events WHERE uuid = ANY(%s::uuid[])", [uuids]
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def wait_stored(self, uuids: list[str], timeout: float) -> float:
        """Seconds until every one of `uuids` is stored; fails on a duplicate."""
        started = time.monotonic()

        def all_stored() -> bool:
            try:
                rows, distinct = self.stored(uuids)
            except psycopg.OperationalError:
                return False
            assert rows == distinct, f"{rows - distinct} events stored twice"
            return rows == len(uuids)

        wait_for(all_stored, timeout, f"{len(uuids)} events to be stored", every=0.1)
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=5)
        self.log.close()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def private_stack(**settings: str) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="tidelog-outage-"))
    postgres = redis = stack = None
    try:
        postgres = PrivatePostgres(root)
        redis = PrivateRedis(root)
        stack = Stack(root, postgres, redis, **settings)
        yield stack
    finally:
        if stack is not None:
            stack.close()
        if redis is not None:
            redis.close()
        if postgres is not None:
            postgres.close()
        shutil.rmtree(root, ignore_errors=True)
