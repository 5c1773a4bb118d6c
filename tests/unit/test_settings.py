"""core.settings refuses to start a production server on a missing or well-known secret key, and
reads every tunable there (nothing else in the code reads the environment)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["contracts", "command_side", "projections", "query_side", "tenancy", "core", "observability"]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TIDELOG_"))}
    return subprocess.run(
        [sys.executable, "-c", "import core.settings as s; print(s.DEBUG, s.SECRET_KEY)"],
        env={**clean, **env}, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_it_refuses_to_start_outside_debug_without_a_secret_key():
    loaded = load_settings()
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set" in loaded.stderr


@pytest.mark.parametrize("key", ["", "tidelog-insecure-development-key-change-me-in-production"])
def test_it_refuses_the_development_key_outside_debug(key):
    loaded = load_settings(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="0")
    assert loaded.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in loaded.stderr


def test_a_debug_server_runs_on_the_development_key():
    loaded = load_settings(DJANGO_DEBUG="1")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["True", "tidelog-insecure-development-key-change-me-in-production"]


def test_a_production_server_runs_on_its_own_key():
    loaded = load_settings(DJANGO_SECRET_KEY="a-real-secret")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["False", "a-real-secret"]


@pytest.mark.parametrize("name", ["TIDELOG_PROJECTION_BATCH", "TIDELOG_REPLAY_BATCH"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_it_refuses_a_batch_of_no_events(name, value):
    loaded = load_settings(DJANGO_SECRET_KEY="k", **{name: value})
    assert loaded.returncode != 0
    assert f"{name} must be a number of events, at least 1, not {value}" in loaded.stderr


def test_it_refuses_an_unknown_event_store_engine():
    loaded = load_settings(DJANGO_SECRET_KEY="k", TIDELOG_EVENT_STORE_ENGINE="timescale")
    assert loaded.returncode != 0
    assert "TIDELOG_EVENT_STORE_ENGINE must be 'auto' or 'postgres'" in loaded.stderr


@pytest.mark.parametrize("name", ["TIDELOG_EVENT_RETENTION_DAYS", "TIDELOG_EVENT_COMPRESS_AFTER_DAYS"])
def test_it_refuses_negative_storage_policy_days(name):
    loaded = load_settings(DJANGO_SECRET_KEY="k", **{name: "-1"})
    assert loaded.returncode != 0
    assert f"{name} must be 0 (off) or a number of days, not -1" in loaded.stderr


def test_it_refuses_a_negative_query_cache():
    loaded = load_settings(DJANGO_SECRET_KEY="k", TIDELOG_QUERY_CACHE_MB="-5")
    assert loaded.returncode != 0
    assert "TIDELOG_QUERY_CACHE_MB must be 0 (off) or a number of MB, not -5" in loaded.stderr


def test_only_the_settings_read_the_environment():
    readers = re.compile(r"os\.environ\.get|os\.getenv|os\.environ\[")
    offenders = [
        str(path.relative_to(REPO))
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if readers.search(path.read_text()) and path != REPO / "core" / "settings.py"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "name, value", [("TIDELOG_BODY_READ_TIMEOUT_SECONDS", "0"), ("TIDELOG_COMMAND_MAX_CONNECTIONS", "0")]
)
def test_it_refuses_slow_client_limits_that_would_refuse_every_request(name, value):
    loaded = load_settings(DJANGO_SECRET_KEY="k", **{name: value})
    assert loaded.returncode != 0
    assert "TIDELOG_BODY_READ_TIMEOUT_SECONDS must be above 0" in loaded.stderr


def test_it_refuses_an_unknown_command_interface():
    loaded = load_settings(DJANGO_SECRET_KEY="k", TIDELOG_COMMAND_INTERFACE="asgi")
    assert loaded.returncode != 0
    assert "TIDELOG_COMMAND_INTERFACE must be 'rsgi' or 'wsgi'" in loaded.stderr


@pytest.mark.parametrize("interface", ["rsgi", "wsgi"])
def test_make_run_serves_the_command_api_through_the_chosen_interface(interface):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TIDELOG_"))}
    code = (
        "import runpy, django; django.setup(); from django.conf import settings;"
        "print(runpy.run_path('bin/tidelog-run', run_name='tidelog_run')['processes'](settings)['command-api'])"
    )
    env = {**clean, "DJANGO_SETTINGS_MODULE": "core.settings", "DJANGO_SECRET_KEY": "k",
           "TIDELOG_COMMAND_INTERFACE": interface}  # fmt: skip
    shown = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"'--interface', '{interface}'" in shown.stdout
    assert f"'core.{interface}_command:application'" in shown.stdout
