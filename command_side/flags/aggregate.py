"""The feature flag as an event-sourced aggregate (the `eventsourcing` library).

Its events are its audit log: every one names the `actor` who caused it. The aggregate keeps
plain JSON-ready state (lists and dicts, as the library's JSON transcoder stores them);
`definition()` turns it into the flags.definition.FlagDefinition the evaluator runs. The service
(service.py) validates a change against that definition before it triggers any event, so an
event in the store is always a valid change.

Changing an event's fields means a new class_version and an upcast method on its class, never
editing stored events (eventsourcing's "upcasting").
"""

import uuid
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate, event

from flags.definition import Condition, FlagDefinition, Variant

# uuid5(this, "{project_id}:{key}") is a flag's aggregate id: a second flag with the same key
# in the same project is the same aggregate at version 1, which the event store refuses.
_ID_NAMESPACE = uuid.UUID("5f0c7d7e-2b1a-4c0e-9a51-7d1f2e6b9c44")


def flag_id(project_id: int, key: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, f"{project_id}:{key}")


class Flag(Aggregate):
    @staticmethod
    def create_id(project_id: int, key: str, **_: Any) -> uuid.UUID:
        return flag_id(project_id, key)

    @event("Created")
    def __init__(
        self,
        project_id: int,
        key: str,
        name: str,
        description: str,
        rollout_percentage: float,
        variants: list[dict[str, Any]],
        conditions: list[dict[str, Any]],
        overrides: dict[str, Any],
        payload: Any,
        enabled: bool,
        actor: str,
    ) -> None:
        self.project_id = project_id
        self.key = key
        self.name = name
        self.description = description
        self.rollout_percentage = rollout_percentage
        self.variants = variants
        self.conditions = conditions
        self.overrides = overrides
        self.payload = payload
        self.enabled = enabled
        self.archived = False
        self.created_by = actor
        self.updated_by = actor

    @event("Described")
    def describe(self, name: str, description: str, actor: str) -> None:
        self.name, self.description, self.updated_by = name, description, actor

    @event("RolloutChanged")
    def change_rollout(self, rollout_percentage: float, actor: str) -> None:
        self.rollout_percentage, self.updated_by = rollout_percentage, actor

    @event("VariantsChanged")
    def change_variants(self, variants: list[dict[str, Any]], actor: str) -> None:
        self.variants, self.updated_by = variants, actor

    @event("ConditionsChanged")
    def change_conditions(self, conditions: list[dict[str, Any]], actor: str) -> None:
        self.conditions, self.updated_by = conditions, actor

    @event("OverridesChanged")
    def change_overrides(self, overrides: dict[str, Any], actor: str) -> None:
        self.overrides, self.updated_by = overrides, actor

    @event("PayloadChanged")
    def change_payload(self, payload: Any, actor: str) -> None:
        self.payload, self.updated_by = payload, actor

    @event("Enabled")
    def enable(self, actor: str) -> None:
        self.enabled, self.updated_by = True, actor

    @event("Disabled")
    def disable(self, actor: str) -> None:
        self.enabled, self.updated_by = False, actor

    @event("Archived")
    def archive(self, actor: str) -> None:
        self.archived, self.enabled, self.updated_by = True, False, actor

    def definition(self) -> FlagDefinition:
        return FlagDefinition(
            key=self.key,
            enabled=self.enabled,
            rollout_percentage=self.rollout_percentage,
            variants=msgspec.convert(self.variants, tuple[Variant, ...]),
            conditions=msgspec.convert(self.conditions, tuple[Condition, ...]),
            overrides=dict(self.overrides),
            payload=self.payload,
            archived=self.archived,
            version=self.version,
        )
