"""The Android example's Kotlin core, compiled with Debian's kotlinc and run on the JDK as a
console app (sdk_examples/android/demo/Demo.kt), and the HTTP peers its tests put in front of
it: a server that answers from a script, and a proxy to a live Tidelog that can hold an answer
back (so the app can be killed while a batch is in flight)."""

import gzip
import hashlib
import http.client
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.process_helpers import REPO

SOURCES = REPO / "sdk_examples" / "android"
CACHE = REPO / ".cache" / "kotlin-sdk"


STUBS = REPO / "tests" / "sdk" / "android_stubs"


def build_demo() -> Path:
    """demo.jar from the core and the demo, the app the tests run."""
    return compiled([*(SOURCES / "core").glob("*.kt"), SOURCES / "demo" / "Demo.kt"], "demo.jar", runtime=True)


def build_android_glue() -> Path:
    """The core and the Android glue compiled against stand-ins of Android's classes with their
    real signatures (tests/sdk/android_stubs): the glue compiles, with no warning of its own."""
    return compiled([*(SOURCES / "core").glob("*.kt"), SOURCES / "android" / "TidelogAndroid.kt",
                     *STUBS.glob("*.kt")], "glue", runtime=False, warnings_from=SOURCES)  # fmt: skip


def compiled(sources: list[Path], output: str, *, runtime: bool, warnings_from: Path = SOURCES) -> Path:
    """kotlinc's output for `sources`, built once per version of them (kotlinc takes ~10 s here).
    Fails on an error, and on a warning in a file under `warnings_from`: those would be the
    Kotlin 1.3-on-JDK-17 kind ('isEmpty' of CharSequence), which a newer compiler rejects."""
    files = sorted(sources)
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:16]
    target = CACHE / digest / output
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f"partial-{output}"
    shutil.rmtree(partial, ignore_errors=True)
    done = subprocess.run(
        ["kotlinc", *map(str, files), *(["-include-runtime"] if runtime else []), "-d", str(partial)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"kotlinc failed:\n{done.stdout}\n{done.stderr}"
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line and str(warnings_from) in line]
    assert not warnings, "\n".join(warnings)
    partial.rename(target)
    return target


class DemoApp:
    """One run of the console app: each command is a line on its stdin, answered by lines ending
    in "ok <command>". Started in its own process group, so a kill takes the JVM whole."""

    def __init__(self, jar: Path, storage: Path, host: str, key: str, **options: str) -> None:
        argv = ["java", "-jar", str(jar), "--host", host, "--key", key, "--storage", str(storage)]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", value]
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._next(lambda line: line.startswith("ready "), 30)
        self.distinct_id = ready.split(" ", 1)[1]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.said.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def _next(self, wanted: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"the app said nothing wanted within {timeout}s; it said:\n" + self.log()
                ) from None
            if wanted(line):
                return line

    def do(self, command: str, timeout: float = 30) -> list[str]:
        """Runs a command; returns the lines it answered (not the log), its "ok" excluded."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        word = command.split(" ")[0]
        answered: list[str] = []
        while True:
            line = self._next(lambda line: not line.startswith("log "), timeout)
            if line == f"ok {word}":
                return answered
            answered.append(line)

    def value(self, command: str, timeout: float = 30) -> str:
        """The answer without its echo: "flag beta" answered "flag beta blue" is "blue"."""
        (line,) = self.do(command, timeout)
        answer = line.split(" ", 1)[1]
        arguments = command.split(" ", 1)[1] + " " if " " in command else ""
        return answer.removeprefix(arguments)

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=30) == 0, self.log()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(self.said[-60:])


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0
    """What the server answered (0 until it has)."""

    @property
    def kind(self) -> str:
        if self.path.endswith("/batch/"):
            return "batch"
        if self.path.endswith("/session/start/"):
            return "session_start"
        if self.path.endswith("/end/"):
            return "session_end"
        if self.path.endswith("/for_user/"):
            return "flags"
        return self.path

    @property
    def uuids(self) -> list[str]:
        return [event["uuid"] for event in self.body["events"]] if self.kind == "batch" else []


def decoded(headers: Any, raw: bytes) -> Any:
    body = gzip.decompress(raw) if headers.get("Content-Encoding") == "gzip" else raw
    return json.loads(body) if body else None


Answer = tuple[int, dict[str, str], Any]


@dataclass
class ScriptedServer:
    """Answers each kind of request from its own script (popped in order; the last one stays),
    and keeps every request it got. Default: what Tidelog answers when all goes well."""

    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def answer(self, request: Request) -> Answer:
        script = self.scripts.get(request.kind)
        if script:
            return script.pop(0) if len(script) > 1 else script[0]
        if request.kind == "batch":
            return 200, {}, {"accepted": len(request.body["events"]), "rejected": []}
        if request.kind == "session_start":
            return 201, {}, {"session_id": request.body["session_id"], "uuid": "00000000-0000-0000-0000-000000000000"}
        if request.kind == "flags":
            return 200, {}, {"distinct_id": request.body["distinct_id"], "flags": {}}
        return 200, {}, {}

    def of(self, kind: str) -> list[Request]:
        return [request for request in list(self.requests) if request.kind == kind]


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    state = ScriptedServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, dict(self.headers), decoded(self.headers, raw), time.monotonic())
            state.requests.append(request)
            status, headers, body = state.answer(request)
            request.status = status
            content = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_POST = do_PUT = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class HoldingProxy:
    """Forwards to a live command API. When `hold_next_batch` is set, the next batch that the
    server answers 200 is held: the server has it, the app never hears so. With the server down
    it closes the connection unanswered, as a refused connection looks to the app."""

    upstream: str
    requests: list[Request] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    hold_next_batch: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: Request | None = None
    url: str = ""


@contextmanager
def holding_proxy(upstream_port: int) -> Iterator[HoldingProxy]:
    state = HoldingProxy(upstream=f"127.0.0.1:{upstream_port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, dict(self.headers), decoded(self.headers, raw), time.monotonic())
            state.requests.append(request)
            upstream = http.client.HTTPConnection(state.upstream, timeout=30)
            try:
                upstream.request(self.command, self.path, body=raw, headers=dict(self.headers))
                response = upstream.getresponse()
                content = response.read()
            except OSError:
                self.close_connection = True  # the server is down: no answer at all
                state.answers.append(0)
                return
            finally:
                upstream.close()
            state.answers.append(response.status)
            if request.kind == "batch" and response.status == 200 and state.hold_next_batch.is_set():
                state.hold_next_batch.clear()
                state.held = request
                state.holding.set()
                state.release.wait(60)
                self.close_connection = True  # the app is dead by now: nobody to answer
                return
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_POST = do_PUT = do_GET = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        try:
            yield state
        finally:
            state.release.set()


def kotlinc_missing() -> str | None:
    if shutil.which("kotlinc") is None or shutil.which("java") is None:
        return "needs Debian's kotlin package (kotlinc) and a JDK: bin/ensure-test-tools installs kotlin as root"
    return None
