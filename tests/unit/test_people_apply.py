"""The people projection's apply() (pure: no database) and the ingestion refusal of illegal ids
in an $identify or $create_alias (contracts.events)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.errors import ErrorCode
from contracts.events import EventError, decode_event, is_illegal_distinct_id
from people.identity import ALIAS_KIND, IDENTIFY_KIND
from people.properties import PropertyRow
from projections.people import People, Seen
from projections.projection import StoredEvent

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def stored(distinct_id, minutes=0, event_type="e", properties=None, project_id=1):
    return StoredEvent(
        "1", 0, project_id, event_type, distinct_id, T0 + timedelta(minutes=minutes), None, None, None, None, None,
        None if properties is None else json.dumps(properties),
    )  # fmt: skip


def test_apply_counts_each_id_and_keeps_its_first_and_last_time():
    changes = People().apply([stored("u", 5), stored("u", 1), stored("u", 3), stored("v", 2, project_id=2)])
    assert changes.distinct_ids == {
        (1, "u"): Seen(T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), 3),
        (2, "v"): Seen(T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), 1),
    }
    assert changes.links == {} and changes.properties == {}


def test_apply_keeps_each_link_at_its_earliest_request_and_never_counts_the_other_id_as_seen():
    changes = People().apply(
        [
            stored("u", 5, "$identify", {"$anon_distinct_id": "anon"}),
            stored("u", 2, "$identify", {"$anon_distinct_id": "anon"}),
            stored("u", 7, "$identify", {}),
            stored("u", 8, "$create_alias", {"alias": "mail"}),
        ]
    )
    assert changes.links == {
        (1, IDENTIFY_KIND, "u", "anon"): T0 + timedelta(minutes=2),
        (1, IDENTIFY_KIND, "u", "u"): T0 + timedelta(minutes=7),
        (1, ALIAS_KIND, "u", "mail"): T0 + timedelta(minutes=8),
    }
    assert set(changes.distinct_ids) == {(1, "u")}


def test_apply_folds_person_properties_of_any_event_per_id_and_key():
    changes = People().apply(
        [
            stored("u", 5, "screen", {"$set": {"plan": "pro"}}),
            stored("u", 1, "screen", {"$set": {"plan": "free"}, "$set_once": {"src": "ad"}}),
            stored("u", 3, "screen", {"$unset": ["src"]}),
        ]
    )
    assert changes.properties == {
        (1, "u", "plan"): PropertyRow(set_value='"pro"', set_at=T0 + timedelta(minutes=5)),
        (1, "u", "src"): PropertyRow(
            once_value='"ad"', once_at=T0 + timedelta(minutes=1), unset_at=T0 + timedelta(minutes=3)
        ),
    }


def test_the_people_projection_asks_for_identity_events_and_person_property_keys_only():
    people = People()
    assert set(people.property_types(None)) == {"$identify", "$create_alias"}
    assert set(people.property_keys(None)) == {"$set", "$set_once", "$unset"}


@pytest.mark.parametrize(
    "value",
    ["anonymous", "Guest", "distinct_id", "ID", "not_authenticated", "email", "undefined", "TRUE", "false", "null",
     "0", "[object Object]", "NaN", "None", "", "   ", "\t\n", " null "],
)  # fmt: skip
def test_posthogs_illegal_ids_are_illegal_whatever_their_case(value):
    assert is_illegal_distinct_id(value)


def test_ordinary_ids_are_legal():
    for value in ("user-1", "nullable", "0x1", "anonymous-42", "é"):
        assert not is_illegal_distinct_id(value)


def decoded(event_type, distinct_id, **properties):
    body = {"event_type": event_type, "distinct_id": distinct_id, "properties": properties}
    return decode_event(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("event", "code", "field"),
    [
        (("$identify", "null", {"$anon_distinct_id": "a"}), ErrorCode.ILLEGAL_DISTINCT_ID, "distinct_id"),
        (("$identify", "u", {"$anon_distinct_id": "undefined"}), ErrorCode.ILLEGAL_DISTINCT_ID,
         "properties.$anon_distinct_id"),
        (("$identify", "u", {"$anon_distinct_id": " "}), ErrorCode.ILLEGAL_DISTINCT_ID, "properties.$anon_distinct_id"),
        (("$identify", "u", {"$anon_distinct_id": 12}), ErrorCode.INVALID_TYPE, "properties.$anon_distinct_id"),
        (("$identify", "u", {"$anon_distinct_id": "x" * 201}), ErrorCode.VALUE_TOO_LONG,
         "properties.$anon_distinct_id"),
        (("$create_alias", "guest", {"alias": "a"}), ErrorCode.ILLEGAL_DISTINCT_ID, "distinct_id"),
        (("$create_alias", "u", {"alias": "[object Object]"}), ErrorCode.ILLEGAL_DISTINCT_ID, "properties.alias"),
        (("$create_alias", "u", {}), ErrorCode.MISSING_FIELD, "properties.alias"),
    ],
)  # fmt: skip
def test_an_identify_or_alias_with_an_illegal_id_is_refused_with_its_field(event, code, field):
    event_type, distinct_id, properties = event
    error = decoded(event_type, distinct_id, **properties)
    assert isinstance(error, EventError)
    assert (error.code, error.field) == (code, field)


def test_plain_events_and_good_identities_with_such_ids_are_accepted():
    assert not isinstance(decoded("app_opened", "anonymous"), EventError)
    assert not isinstance(decoded("$identify", "user-1"), EventError)
    assert not isinstance(decoded("$identify", "user-1", **{"$anon_distinct_id": None}), EventError)
    assert not isinstance(decoded("$create_alias", "user-1", alias="user@example.com"), EventError)
