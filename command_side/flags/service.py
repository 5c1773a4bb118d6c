"""Every change to a flag goes through here: the admin API, the Django admin and the management
commands call the same functions.

A change is validated against the flag's whole definition (flags.definition.validate) before
it is saved, saved as the aggregate's events (optimistic concurrency on the aggregate version:
a stale edit raises StaleVersion naming the current version, never a lost update), then recorded
as the flag's row (FlagRow) and published to the evaluators (cache.publish).

The aggregate's events are the truth. If the process dies between the save and the row, the
upkeep `flags_sync` (every few seconds, command_side/actors.py) finds the events it has not
recorded and records them; if Redis is down at publish time, the same upkeep publishes later.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis
from django.conf import settings
from django.db import connection
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError
from msgspec import UNSET, UnsetType

from command_side import buffer
from command_side.flags import cache
from command_side.flags.aggregate import Flag, flag_id
from command_side.flags.application import flag_app
from command_side.models import FlagRow
from contracts import schema
from flags.definition import Condition, Variant, check_key, validate

log = logging.getLogger("tidelog.flags")


class FlagNotFound(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no feature flag {key!r} in this project")
        self.key = key


class FlagKeyTaken(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"a feature flag {key!r} already exists in this project (keys are never reused)")
        self.key = key


class StaleVersion(Exception):
    def __init__(self, key: str, expected: int, current: int) -> None:
        super().__init__(
            f"feature flag {key!r} is at version {current}, not {expected}: someone changed it since you read"
            " it; read it again and reapply your change"
        )
        self.current = current


class FlagArchived(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"feature flag {key!r} is archived and cannot change")


class FlagFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a create or an edit may set; UNSET leaves a field as it is."""

    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    rollout_percentage: float | UnsetType = UNSET
    variants: list[Variant] | UnsetType = UNSET
    conditions: list[Condition] | UnsetType = UNSET
    overrides: dict[str, str | bool] | UnsetType = UNSET
    payload: Any = UNSET
    enabled: bool | UnsetType = UNSET


class FlagCreate(FlagFields, kw_only=True, forbid_unknown_fields=True):
    key: str


class FlagPatch(FlagFields, kw_only=True, forbid_unknown_fields=True):
    version: int
    """The version the edit was made against: a newer flag refuses it (StaleVersion)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int
    event: str
    actor: str
    at: datetime
    changes: dict[str, Any]


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _or(value: Any, default: Any) -> Any:
    return default if value is UNSET else value


def _record(aggregate: Flag, *, publish: bool = True) -> None:
    """The aggregate's state as its FlagRow (only ever forward: a slower writer's older state
    never overwrites a newer one), then published to the evaluators."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {schema.FLAG_DEFINITIONS} AS t
                    (aggregate_id, project_id, key, name, description, version, definition, enabled, archived,
                     created_by, created_at, updated_by, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (aggregate_id) DO UPDATE SET
                    name = EXCLUDED.name, description = EXCLUDED.description, version = EXCLUDED.version,
                    definition = EXCLUDED.definition, enabled = EXCLUDED.enabled, archived = EXCLUDED.archived,
                    updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
                WHERE t.version < EXCLUDED.version""",
            [
                aggregate.id,
                aggregate.project_id,
                aggregate.key,
                aggregate.name,
                aggregate.description,
                aggregate.version,
                msgspec.json.encode(aggregate.definition()).decode(),
                aggregate.enabled,
                aggregate.archived,
                aggregate.created_by,
                aggregate.created_on,
                aggregate.updated_by,
                aggregate.modified_on,
            ],
        )
    if publish:
        _publish(aggregate.project_id)


def _publish(project_id: int) -> None:
    try:
        cache.publish(project_id)
    except redis.RedisError as exc:
        # Saved and recorded; the evaluators learn of it when the flags_sync upkeep publishes.
        log.warning("project %d: flags saved but not yet published (Redis: %s)", project_id, exc)


def _load(project_id: int, key: str) -> Flag:
    try:
        aggregate = flag_app().flag(flag_id(project_id, key))
    except AggregateNotFoundError:
        raise FlagNotFound(key) from None
    if aggregate.project_id != project_id:  # a uuid5 collision: never another project's flag
        raise FlagNotFound(key)
    return aggregate


def flag_create(*, project_id: int, fields: FlagCreate, actor: str) -> Flag:
    check_key(fields.key)
    aggregate = Flag(
        project_id=project_id,
        key=fields.key,
        name=_or(fields.name, ""),
        description=_or(fields.description, ""),
        rollout_percentage=float(_or(fields.rollout_percentage, 100.0)),
        variants=_plain(_or(fields.variants, [])),
        conditions=_plain(_or(fields.conditions, [])),
        overrides=dict(_or(fields.overrides, {})),
        payload=_or(fields.payload, None),
        enabled=bool(_or(fields.enabled, False)),
        actor=actor,
    )
    validate(aggregate.definition())
    try:
        flag_app().save(aggregate)
    except RecordConflictError:
        raise FlagKeyTaken(fields.key) from None
    _record(aggregate)
    return aggregate


# An edited field, how its value is compared and stored, and the aggregate's method for it.
_FIELD_EVENTS: tuple[tuple[str, Callable[[Any], Any], str], ...] = (
    ("rollout_percentage", float, "change_rollout"),
    ("variants", _plain, "change_variants"),
    ("conditions", _plain, "change_conditions"),
    ("overrides", dict, "change_overrides"),
    ("payload", lambda value: value, "change_payload"),
)


def _apply_edit(aggregate: Flag, fields: FlagFields, actor: str) -> bool:
    """Trigger the events an edit means, one per field that really changes, in a fixed order;
    return whether there were any. Nothing is saved here."""
    before = aggregate.version
    name = _or(fields.name, aggregate.name)
    description = _or(fields.description, aggregate.description)
    if (name, description) != (aggregate.name, aggregate.description):
        aggregate.describe(name, description, actor=actor)
    for field, normal, method in _FIELD_EVENTS:
        value = getattr(fields, field)
        if value is not UNSET and normal(value) != getattr(aggregate, field):
            getattr(aggregate, method)(normal(value), actor=actor)
    if fields.enabled is not UNSET and fields.enabled != aggregate.enabled:
        (aggregate.enable if fields.enabled else aggregate.disable)(actor=actor)
    return aggregate.version != before


def flag_update(*, project_id: int, key: str, patch: FlagPatch, actor: str) -> Flag:
    aggregate = _load(project_id, key)
    if aggregate.version != patch.version:
        raise StaleVersion(key, patch.version, aggregate.version)
    if aggregate.archived:
        raise FlagArchived(key)
    if not _apply_edit(aggregate, patch, actor):
        return aggregate
    # Validated whole, before anything is saved: an invalid edit leaves no event behind.
    validate(aggregate.definition())
    _save_or_stale(aggregate, key, patch.version)
    return aggregate


def flag_archive(*, project_id: int, key: str, version: int | None, actor: str) -> Flag:
    aggregate = _load(project_id, key)
    if version is not None and aggregate.version != version:
        raise StaleVersion(key, version, aggregate.version)
    if aggregate.archived:
        return aggregate
    expected = aggregate.version
    aggregate.archive(actor=actor)
    _save_or_stale(aggregate, key, expected)
    return aggregate


def _save_or_stale(aggregate: Flag, key: str, expected: int) -> None:
    try:
        flag_app().save(aggregate)
    except RecordConflictError:
        # Another edit saved between our read and our save: the store's unique
        # (aggregate, version) refused ours. Nothing of this edit was kept.
        current = _load(aggregate.project_id, key).version
        raise StaleVersion(key, expected, current) from None
    _record(aggregate)


def flag_get(*, project_id: int, key: str) -> Flag:
    """The aggregate itself, from its events: the newest state there is."""
    return _load(project_id, key)


_HIDDEN = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "actor"})


def flag_history(*, project_id: int, key: str) -> list[HistoryEntry]:
    aggregate_id = flag_id(project_id, key)
    events = list(flag_app().events.get(aggregate_id))
    if not events or getattr(events[0], "project_id", None) != project_id:
        raise FlagNotFound(key)
    return [
        HistoryEntry(
            version=e.originator_version,
            event=type(e).__name__,
            actor=getattr(e, "actor", ""),
            at=getattr(e, "timestamp"),  # noqa: B009 (every stored event has one; not in its protocol)
            changes={name: value for name, value in vars(e).items() if name not in _HIDDEN},
        )
        for e in events
    ]


def flags_sync() -> int:
    """Record and publish what flag events are ahead of; return how many flags it had to heal.
    The upkeep runs it every few seconds: it heals a process that died between saving a flag and
    recording it, and a publish that Redis missed. It reads the aggregates changed since the
    last run (their notifications, from a position kept in Redis: all of them if Redis lost it)
    and touches only those whose row or published snapshot is behind: usually none."""
    app = flag_app()
    position_key = f"{settings.REDIS_PREFIX}:flags:synced"
    client = buffer.client()
    raw = client.get(position_key)
    start = int(raw) + 1 if raw is not None else 1
    newest = app.recorder.max_notification_id() or 0
    if newest < start:
        return 0
    ids: set[uuid.UUID] = set()
    while start <= newest:
        notifications = app.recorder.select_notifications(start=start, limit=500, stop=newest)
        if not notifications:
            break
        ids.update(uuid.UUID(str(n.originator_id)) for n in notifications)
        start = notifications[-1].id + 1
    recorded = dict(
        FlagRow.objects.filter(aggregate_id__in=ids).values_list("aggregate_id", "version")
    )  # fmt: skip
    healed = 0
    stale_projects: set[int] = set()
    for aggregate_id in ids:
        aggregate = app.flag(aggregate_id)
        if recorded.get(aggregate_id, 0) < aggregate.version:
            _record(aggregate, publish=False)
            stale_projects.add(aggregate.project_id)
            healed += 1
        elif not _published(client, aggregate):
            stale_projects.add(aggregate.project_id)
            healed += 1
    for project_id in stale_projects:
        cache.publish(project_id)  # here a Redis error propagates: the position stays behind
    client.set(position_key, newest)
    return healed


def _published(client: Any, aggregate: Flag) -> bool:
    """Whether Redis's snapshot of the flag's project shows it as it is now (an archived flag:
    absent from it)."""
    blob = client.get(cache.snapshot_key(aggregate.project_id))
    if blob is None:
        return False
    versions = {flag.key: flag.version for flag in cache.decode_snapshot(blob).flags}
    return versions.get(aggregate.key) == (None if aggregate.archived else aggregate.version)
