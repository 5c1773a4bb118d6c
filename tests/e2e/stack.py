"""Every Tidelog process, started as bin/tidelog-run starts them, on free ports, against the
test's database and Redis prefix: for the end-to-end tests that talk HTTP to the real servers."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.process_helpers import BIN, Processes, free_port, process_env, wait_for


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, kind, content = response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        status, kind, content = error.code, error.headers.get_content_type(), error.read()
    return status, json.loads(content) if kind == "application/json" and content else content


def answers(url: str) -> bool:
    try:
        http("GET", url)
    except OSError:  # refused or reset: not listening yet
        return False
    return True


@contextmanager
def running_tidelog(tmp_path: Path, *, interface: str) -> Iterator[tuple[Processes, str, str]]:
    """Yields the processes and the command and query API base URLs (under /api/v1/analytics/);
    kills everything it started. `interface`: the command API's, "rsgi" (make run) or "wsgi"."""
    command_port, query_port = free_port(), free_port()
    # One metrics folder for the stack's processes, as bin/tidelog-run makes (observability/metrics.py).
    env = process_env(dramatiq_queue_prefetch="100", TIDELOG_PROJECTION_POLL_SECONDS="0.05",
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))  # fmt: skip
    # The same commands as bin/tidelog-run, with one worker each and our ports.
    granian = [str(BIN / "granian"), "--host", "127.0.0.1", "--no-ws", "--workers", "1"]
    wsgi_threads = ["--blocking-threads", "1"] if interface == "wsgi" else []
    commands = {
        "command-api": [*granian, "--interface", interface, "--port", str(command_port), *wsgi_threads,
                        f"core.{interface}_command:application"],
        "query-api": [*granian, "--interface", "wsgi", "--port", str(query_port), "--blocking-threads", "4",
                      "core.wsgi_query:application"],
        "worker": [str(BIN / "dramatiq"), "command_side.worker", "--processes", "1", "--threads", "2"],
        "scheduler": [str(BIN / "python"), "manage.py", "schedule_drains"],
        "projections": [str(BIN / "python"), "manage.py", "projections", "run"],
    }  # fmt: skip
    processes = Processes(tmp_path)
    try:
        for name, argv in commands.items():
            processes.start(name, argv, env)
        command = f"http://127.0.0.1:{command_port}/api/v1/analytics/"
        query = f"http://127.0.0.1:{query_port}/api/v1/analytics/"
        for url in (command, query):
            wait_for(lambda url=url: answers(url), f"{url} to answer HTTP", processes=processes)
        yield processes, command, query
    finally:
        processes.stop_all()
