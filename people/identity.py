"""Identity merges, PostHog's rules made deterministic: the links an `$identify` or
`$create_alias` asks for, merged in an order fixed by the links themselves (never by arrival),
with union-find. Pure: the same set of links always gives the same persons and outcomes.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from contracts.events import ALIAS, ANON_DISTINCT_ID, CREATE_ALIAS, IDENTIFY, is_illegal_distinct_id

IDENTIFY_KIND: Final = "identify"
ALIAS_KIND: Final = "alias"

MERGED: Final = "merged"
SAME: Final = "same"
REFUSED_BOTH_IDENTIFIED: Final = "refused_both_identified"

NAMESPACE: Final = uuid.UUID("6d3c1f0e-4b8a-5e21-9a7c-7469646c6f67")
"""Fixed forever: every person id of an id never merged is derived from it."""


def person_id_of(project_id: int, distinct_id: str) -> uuid.UUID:
    """The person of a distinct_id never linked to another (and the id a merge's survivor keeps)."""
    return uuid.uuid5(NAMESPACE, f"{project_id}:{distinct_id}")


class Link(NamedTuple):
    """One pair of ids an event asked to merge. The field order is the merge order."""

    first_at: datetime
    kind: str
    distinct_id: str
    other_id: str


def link_of(event_type: str, distinct_id: str, properties: Any) -> tuple[str, str] | None:
    """(kind, other id) an event asks to link its distinct_id to, or None. An `$identify` without
    `$anon_distinct_id` links the id to itself: it only marks its person identified. Ids that are
    not legal strings (refused at ingestion since; older events may hold them) link nothing."""
    if event_type == IDENTIFY:
        kind = IDENTIFY_KIND
        other = properties.get(ANON_DISTINCT_ID) if isinstance(properties, dict) else None
        if other is None:
            other = distinct_id
    elif event_type == CREATE_ALIAS:
        kind = ALIAS_KIND
        other = properties.get(ALIAS) if isinstance(properties, dict) else None
    else:
        return None
    if not isinstance(other, str) or is_illegal_distinct_id(other) or is_illegal_distinct_id(distinct_id):
        return None
    return kind, other


@dataclass(frozen=True)
class Partition:
    """What a component's links decide: each id's person, the identified persons, each link's outcome."""

    person_of: Mapping[str, uuid.UUID]
    identified: frozenset[uuid.UUID]
    outcomes: Mapping[tuple[str, str, str], str]
    """(kind, distinct_id, other_id) -> MERGED, SAME or REFUSED_BOTH_IDENTIFIED."""


def merge(project_id: int, links: Iterable[Link]) -> Partition:
    """Apply the links in (first_at, kind, distinct_id, other_id) order. For each, P is the person
    of its distinct_id and Q of its other id. An `$identify` first marks P identified (its
    distinct_id is a user's id). P == Q: 'same'. Both identified: 'refused_both_identified' (never
    merge two identified people: PostHog's guard). Else Q merges into P, which keeps its person id
    and is identified if either was: 'merged'."""
    parent: dict[str, str] = {}
    identified: set[str] = set()  # roots

    def find(distinct_id: str) -> str:
        root = parent.setdefault(distinct_id, distinct_id)
        while root != parent[root]:
            root = parent[root]
        while distinct_id != root:  # path compression
            parent[distinct_id], distinct_id = root, parent[distinct_id]
        return root

    outcomes: dict[tuple[str, str, str], str] = {}
    for link in sorted(set(links)):
        p, q = find(link.distinct_id), find(link.other_id)
        if link.kind == IDENTIFY_KIND:
            identified.add(p)
        key = (link.kind, link.distinct_id, link.other_id)
        if p == q:
            outcomes[key] = SAME
        elif p in identified and q in identified:
            outcomes[key] = REFUSED_BOTH_IDENTIFIED
        else:
            parent[q] = p
            if q in identified:
                identified.discard(q)
                identified.add(p)
            outcomes[key] = MERGED
    person_of = {distinct_id: person_id_of(project_id, find(distinct_id)) for distinct_id in parent}
    return Partition(person_of, frozenset(person_id_of(project_id, root) for root in identified), outcomes)
