"""Helpers for tests that start Tidelog's real processes (granian, Dramatiq, manage.py commands)
against the test run's own database and Redis prefix: their environment, free ports, waiting on
a fact with a deadline, and killing every process a test started.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def database_url() -> str:
    """DATABASE_URL of the test database (not the developer's `tidelog`)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a Tidelog process in this test run: settings come from it (core/settings.py).

    Without DJANGO_SETTINGS_MODULE (pytest-django sets it here): each entry point chooses its
    own, as in production (core.wsgi_command the command API's trimmed settings)."""
    inherited = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    return {
        **inherited,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "TIDELOG_REDIS_PREFIX": settings.REDIS_PREFIX,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; a tiny race with other binders remains)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """Processes a test started, each in its own process group (so its children go with it),
    each logging to a file in `log_dir`. `stop_all` ends every one still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        assert name not in self.running, f"{name} is already running"
        with open(self.log_dir / f"{name}.log", "ab") as log:
            child = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running[name] = child
        self.commands[name] = (argv, env)
        return child

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start `name` again, stopped earlier by `signal`, with the same command and environment."""
        return self.start(name, *self.commands[name])

    def signal(self, name: str, signum: int, timeout: float = 15) -> int:
        """Send `signum` to `name` (SIGKILL: to its whole process group), wait for the process,
        return its exit code."""
        child = self.running.pop(name)
        try:
            # TRICKY: a graceful signal goes to the leader only. Granian and Dramatiq forward it
            # to their workers themselves; a worker signalled twice (by the group signal and by
            # its parent) may abandon its graceful stop (Dramatiq's then exits 1).
            if signum == signal.SIGKILL:
                os.killpg(child.pid, signum)
            else:
                os.kill(child.pid, signum)
        except ProcessLookupError:
            pass
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise AssertionError(
                f"{name} did not exit within {timeout}s of signal {signum}\n{self.log(name)}"
            ) from None

    def stop_all(self) -> None:
        for child in self.running.values():
            if child.poll() is None:
                try:
                    os.kill(child.pid, signal.SIGTERM)  # the leader only: see signal()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for name, child in list(self.running.items()):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (granian's workers, Dramatiq's forks)
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
            del self.running[name]

    def log(self, name: str, chars: int = 4000) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- last of {name}'s log ---\n{text[-chars:]}"

    def check_alive(self) -> None:
        for name, child in self.running.items():
            if child.poll() is not None:
                raise AssertionError(f"{name} exited with {child.returncode}\n{self.log(name)}")


def wait_for[T](
    fact: Callable[[], T], what: str | Callable[[], str], *, timeout: float = 30, processes: Processes | None = None
) -> T:
    """Poll `fact` until it is truthy and return it; fail naming `what` (a callable: computed at
    the failure) after `timeout` seconds, or at once if one of `processes` died meanwhile (with
    its log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fact()
        if value:
            return value
        if processes is not None:
            processes.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(processes.log(name) for name in processes.running) if processes else ""
            described = what() if callable(what) else what
            raise AssertionError(f"waited {timeout:.0f}s for {described}; last seen: {value!r}\n{logs}")
        time.sleep(0.05)
