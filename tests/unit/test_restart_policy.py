"""`make run`'s supervisor starts a dead process again after a doubling backoff, and stops
everything only when one keeps dying."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "tidelog-run"


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    loader = importlib.machinery.SourceFileLoader("tidelog_run", str(SCRIPT))
    spec = importlib.util.spec_from_loader("tidelog_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.RestartPolicy(
        backoff_seconds=1.0, backoff_max_seconds=30.0, give_up_deaths=5, give_up_window_seconds=60.0
    )


def test_the_first_death_is_restarted_after_the_base_backoff(policy):
    assert policy.delay([100.0], now=100.0) == 1.0


def test_the_backoff_doubles_with_each_recent_death_up_to_the_max(policy):
    assert [policy.delay([0.0] * n, now=1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    patient = type(policy)(backoff_seconds=1.0, backoff_max_seconds=30.0, give_up_deaths=99, give_up_window_seconds=60)
    assert patient.delay([0.0] * 10, now=1.0) == 30.0


def test_deaths_outside_the_window_are_forgiven(policy):
    assert policy.delay([0.0, 1.0, 2.0, 3.0, 100.0], now=100.0) == 1.0


def test_a_process_that_keeps_dying_stops_everything(policy):
    assert policy.delay([10.0, 20.0, 30.0, 40.0, 50.0], now=50.0) is None
