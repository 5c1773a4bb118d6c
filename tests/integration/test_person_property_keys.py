"""A person property's key is part of rm_person_properties' primary key: one longer than
limits.MAX_PERSON_PROPERTY_KEY_LENGTH is refused at ingestion (`value_too_long` on the field
holding it, alike on the three servers), and one stored before that rule is skipped by the
people projection and its verify instead of stopping the projection for good."""

import secrets

import pytest

from contracts import limits, schema
from projections.registry import projection_get
from projections.runner import checkpoint_ensure, run_batch
from projections.verify import verify
from tests.command_helpers import make_event
from tests.integration.test_fast_path_parity import (  # noqa: F401 (fixtures)
    Request,
    batch_on_three_servers,
    call,
    django_views,
    fast_path,
    rejected,
    rsgi_edge,
)
from tests.integration.test_projection_people import event
from tests.projection_helpers import insert_events, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
LONG = "k" * (limits.MAX_PERSON_PROPERTY_KEY_LENGTH + 1)
EVENTS = [
    make_event(properties={"$set": {LONG: 1}}),
    make_event(properties={"$set_once": {"plan": "pro", LONG: 2}}),
    make_event(properties={"$unset": ["plan", LONG]}),
    make_event(properties={"$set": {"k" * limits.MAX_PERSON_PROPERTY_KEY_LENGTH: 1}}),  # at the limit: kept
    make_event(properties={LONG: 1}),  # not a person property: no such limit
]


def test_the_three_servers_refuse_a_person_property_key_over_the_limit(rsgi_edge, fast_path, django_views, project):  # noqa: F811
    answer = batch_on_three_servers(rsgi_edge, fast_path, django_views, project, EVENTS)
    assert answer["accepted"] == 2
    assert rejected(answer) == [
        (0, "value_too_long", "properties.$set"),
        (1, "value_too_long", "properties.$set_once"),
        (2, "value_too_long", "properties.$unset"),
    ]


def test_a_long_key_stored_before_the_rule_is_skipped_and_the_projection_goes_on():
    key = secrets.token_hex(3000)  # 6,000 characters that do not compress: over a btree entry's size
    insert_events([event("u1", 0, **{"$set": {key: 1, "plan": "pro"}}), event("u1", 1, **{"$unset": [key]})])
    checkpoint_ensure("people")
    assert run_batch(projection_get("people")) == 2
    assert [row[2] for row in table_rows(schema.PERSON_PROPERTIES)] == ["plan"]
    assert verify(projection_get("people")).differences == []
