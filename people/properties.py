"""Person properties from `$set` / `$set_once` / `$unset` in any event's properties (PostHog's
convention), folded so that any order of events gives one result: per (distinct_id, key) the
latest $set, the earliest $set_once and the latest $unset, each by event time; per person the
merge of its distinct_ids' rows. Values are JSON text as `compact_json` spells them.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from contracts.json_text import compact_json
from contracts.limits import MAX_PERSON_PROPERTY_KEY_LENGTH

SET: Final = "$set"
SET_ONCE: Final = "$set_once"
UNSET: Final = "$unset"
PERSON_PROPERTY_KEYS: Final = (SET, SET_ONCE, UNSET)
"""The event properties that carry person properties."""


@dataclass
class PropertyRow:
    """One (distinct_id, key): as a row of rm_person_properties. A value is compact JSON text."""

    set_value: str | None = None
    set_at: datetime | None = None
    once_value: str | None = None
    once_at: datetime | None = None
    unset_at: datetime | None = None

    def add(self, other: "PropertyRow") -> None:
        """Fold another row in: commutative and idempotent, as the SQL upsert."""
        if other.set_at is not None and (
            self.set_at is None or (other.set_at, other.set_value or "") > (self.set_at, self.set_value or "")
        ):
            self.set_at, self.set_value = other.set_at, other.set_value
        if other.once_at is not None and (
            self.once_at is None or (other.once_at, other.once_value or "") < (self.once_at, self.once_value or "")
        ):
            self.once_at, self.once_value = other.once_at, other.once_value
        if other.unset_at is not None and (self.unset_at is None or other.unset_at > self.unset_at):
            self.unset_at = other.unset_at

    def value(self) -> str | None:
        """The key's value: the latest $set if after the latest $unset, else the earliest
        $set_once if after it, else None (absent). At one instant an $unset wins (PostHog
        applies an event's $unset after its $set)."""
        if self.set_at is not None and (self.unset_at is None or self.set_at > self.unset_at):
            return self.set_value
        if self.once_at is not None and (self.unset_at is None or self.once_at > self.unset_at):
            return self.once_value
        return None


def property_rows(properties: Any, at: datetime) -> Iterator[tuple[str, PropertyRow]]:
    """(key, row) for each person property an event's decoded properties set, set once or
    unset. $set and $set_once must be objects, $unset a list of keys; anything else is ignored,
    and so is a key longer than MAX_PERSON_PROPERTY_KEY_LENGTH (ingestion refuses those; one
    stored before must not stop the projection)."""
    if not isinstance(properties, dict):
        return
    to_set = properties.get(SET)
    if isinstance(to_set, dict):
        for key, value in to_set.items():
            if len(key) <= MAX_PERSON_PROPERTY_KEY_LENGTH:
                yield key, PropertyRow(set_value=compact_json(value), set_at=at)
    to_set_once = properties.get(SET_ONCE)
    if isinstance(to_set_once, dict):
        for key, value in to_set_once.items():
            if len(key) <= MAX_PERSON_PROPERTY_KEY_LENGTH:
                yield key, PropertyRow(once_value=compact_json(value), once_at=at)
    to_unset = properties.get(UNSET)
    if isinstance(to_unset, list):
        for key in to_unset:
            if isinstance(key, str) and len(key) <= MAX_PERSON_PROPERTY_KEY_LENGTH:
                yield key, PropertyRow(unset_at=at)


def person_properties(rows: Iterable[tuple[str, PropertyRow]]) -> dict[str, str]:
    """A person's properties (key -> JSON text) from the rows of all its distinct_ids, keys sorted."""
    merged: dict[str, PropertyRow] = {}
    for key, row in rows:
        merged.setdefault(key, PropertyRow()).add(row)
    values = {key: row.value() for key, row in merged.items()}
    return {key: value for key, value in sorted(values.items()) if value is not None}


def json_object(values: Mapping[str, str]) -> str:
    """A JSON object's text from keys and their values' JSON text."""
    return "{" + ",".join(f"{compact_json(key)}:{value}" for key, value in values.items()) + "}"
