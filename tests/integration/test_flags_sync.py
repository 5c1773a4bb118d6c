"""The flag events are the truth: a flag saved by a process that died before recording its row
and publishing it, or published while Redis was away, is recorded and published by the
`sync_flags` upkeep (and `manage.py flags sync`)."""

import json

import pytest
from django.core.management import call_command

from command_side.flags import cache
from command_side.flags.aggregate import Flag
from command_side.flags.application import flag_app
from command_side.flags.service import FlagCreate, flag_create, flags_sync
from command_side.models import FlagRow

pytestmark = pytest.mark.django_db


def saved_but_never_recorded(project_id: int, key: str) -> Flag:
    """What a process leaves behind when it dies right after the aggregate's save."""
    flag = Flag(project_id=project_id, key=key, name="", description="", rollout_percentage=100.0, variants=[],
                conditions=[], overrides={}, payload=None, enabled=True, actor="key:tls_dead")  # fmt: skip
    flag_app().save(flag)
    return flag


def published_keys(redis_client, project_id: int) -> list[str]:
    blob = redis_client.get(cache.snapshot_key(project_id))
    return [flag["key"] for flag in json.loads(blob)["flags"]] if blob else []


def test_a_flag_saved_by_a_process_that_died_is_recorded_and_published_by_the_upkeep(project, redis_client):
    flags_sync()  # whatever earlier tests left: this test counts from here
    saved_but_never_recorded(project.project_id, "orphan")
    assert not FlagRow.objects.filter(key="orphan").exists()
    assert flags_sync() == 1
    row = FlagRow.objects.get(key="orphan")
    assert row.enabled and row.created_by == "key:tls_dead"
    assert published_keys(redis_client, project.project_id) == ["orphan"]
    assert flags_sync() == 0  # nothing behind any more


def test_a_change_the_service_recorded_and_published_is_left_alone(project, redis_client):
    flags_sync()
    flag_create(project_id=project.project_id, fields=FlagCreate(key="fine"), actor="t")
    generation = redis_client.get(cache.generation_key())
    assert flags_sync() == 0
    assert redis_client.get(cache.generation_key()) == generation  # nothing published again


def test_a_publish_redis_missed_is_made_by_the_upkeep(project, redis_client):
    flag_create(project_id=project.project_id, fields=FlagCreate(key="a"), actor="t")
    redis_client.delete(cache.snapshot_key(project.project_id))  # as if the publish had failed
    call_command("flags", "sync", "--all")
    assert published_keys(redis_client, project.project_id) == ["a"]
