"""Flag definitions cached in two real command API processes (one WSGI, one RSGI, as production
runs either): a flag edited through one process's admin API is evaluated anew by the other
within a second, the other never having been told but through Redis."""

import json
import time
import urllib.parse

import pytest

from tests.e2e.stack import answers, http
from tests.process_helpers import BIN, Processes, free_port, process_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_command_apis(tmp_path, redis_client):
    ports = {"wsgi": free_port(), "rsgi": free_port()}
    processes = Processes(tmp_path)
    try:
        for interface, port in ports.items():
            argv = [str(BIN / "granian"), "--interface", interface, "--host", "127.0.0.1", "--no-ws",
                    "--port", str(port), "--workers", "1", f"core.{interface}_command:application"]  # fmt: skip
            processes.start(interface, argv, process_env())
        urls = {name: f"http://127.0.0.1:{port}/api/v1/analytics/" for name, port in ports.items()}
        for url in urls.values():
            wait_for(lambda url=url: answers(url), f"{url} to answer HTTP", processes=processes)
        yield urls
    finally:
        processes.stop_all()


def test_an_edit_through_one_process_reaches_the_others_evaluations_within_a_second(two_command_apis, project):
    admin = {"Authorization": f"Bearer {project.personal_api_key}", "Content-Type": "application/json"}
    sdk = {"Authorization": f"Bearer {project.api_key}"}
    writer, reader = two_command_apis["wsgi"], two_command_apis["rsgi"]
    status, body = http("POST", writer + "admin/feature-flags/", json.dumps({"key": "beta"}).encode(), admin)
    assert status == 201, body
    query = urllib.parse.urlencode({"distinct_id": "u1"})

    def enabled_at_reader() -> bool:
        status, body = http("GET", f"{reader}public/feature-flags/for_user/?{query}", headers=sdk)
        assert status == 200, body
        return bool(body["flags"]["beta"]["enabled"])

    wait_for(lambda: "beta" in http("GET", f"{reader}public/feature-flags/for_user/?{query}", headers=sdk)[1]["flags"],
             "the reader to know the new flag")  # fmt: skip
    assert enabled_at_reader() is False

    status, body = http(
        "PATCH", writer + "admin/feature-flags/beta/", json.dumps({"version": 1, "enabled": True}).encode(), admin
    )
    assert status == 200, body
    edited = time.monotonic()
    while not enabled_at_reader():
        assert time.monotonic() - edited < 1.0, "the other process still evaluates the old definition after 1 s"
        time.sleep(0.02)
