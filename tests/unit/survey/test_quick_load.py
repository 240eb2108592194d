"""The intake's quick load of a CRM event (issue 19) is ``CrmEventSchema().load`` for every event the schema
accepts, and declines (None) every event the schema refuses, which the schema then words as before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import INCLUDE, ValidationError, fields

from services.survey.schemas import (
    CrmCustomerSchema,
    CrmEventSchema,
    VendorEventSchema,
    load_crm_event_quickly,
)
from shared.settings import Limits

SCHEMA = CrmEventSchema()


def good_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "evt-1",
        "type": "purchase.completed",
        "occurred_at": "2026-11-26T10:00:00Z",
        "customer": {"external_id": "crm-1", "email": "ana@example.com", "name": "Ana", "locale": "en"},
        "properties": {"order_id": "o-1", "amount": 42.5},
    }
    event.update(changes)
    return event


def with_customer(**changes: Any) -> dict[str, Any]:
    event = good_event()
    event["customer"] = {**event["customer"], **changes}
    return event


def schema_result(data: Any) -> dict[str, Any] | None:
    try:
        return SCHEMA.load(data)
    except ValidationError:
        return None


def test_the_schemas_have_only_the_hooks_the_quick_load_calls():
    # A hook added to either schema must be called by load_crm_event_quickly too: this fails until it is.
    for schema, hooks in (
        (SCHEMA, {"post_load": ["_keep_unknown_in_properties"], "validates": ["_surveyable_type"]}),
        (
            CrmCustomerSchema(),
            {"validates_schema": ["_reachable"], "post_load": ["_set_aside_unknown"]},
        ),
    ):
        assert {tag: [name for name, *_ in found] for tag, found in schema._hooks.items() if found} == hooks
        assert schema.unknown == INCLUDE
        for name, field in schema.load_fields.items():
            assert field.data_key is None and field.attribute is None, name
            assert not field.pre_load and not field.post_load, name
            assert isinstance(field, fields.Nested) == (schema is SCHEMA and name == "customer"), name
    # The quick load is for CrmEventSchema's customer; a vendor's event (no contact needed) is not taken.
    assert type(SCHEMA.load_fields["customer"].schema) is CrmCustomerSchema
    assert SCHEMA.load_fields["customer"].unknown is None  # the nested schema's own INCLUDE applies
    assert load_crm_event_quickly(VendorEventSchema(), good_event()) is not None  # same fields: also right


@pytest.mark.parametrize(
    "event",
    [
        good_event(),
        good_event(properties={}),
        good_event(extra="kept", properties={"extra": "wins"}),
        {key: value for key, value in good_event().items() if key != "properties"},
        good_event(occurred_at="2026-11-26T12:00:00+02:00"),
        with_customer(email=" ana@example.com ", first_name="Ana"),
        with_customer(email=None, phone="+90 532 123 45 67", timezone="Europe/Istanbul"),
        with_customer(
            preferred_channel="sms", phone="+14155550123", consent=False, attributes={"plan": "pro"}
        ),
    ],
)
def test_an_event_the_schema_accepts_loads_as_the_schema_loads_it(event):
    assert load_crm_event_quickly(SCHEMA, event) == SCHEMA.load(event)


@pytest.mark.parametrize(
    "event",
    [
        good_event(id=""),
        good_event(id="x" * 201),
        good_event(id=7),
        good_event(type="Not a type"),
        good_event(type="custom.type"),  # a custom type: the schema's validator asks for a trigger rule
        good_event(type=["purchase.completed"]),
        good_event(occurred_at="2026-11-26T10:00:00"),  # no offset
        good_event(occurred_at="yesterday"),
        good_event(customer=None),
        good_event(customer="crm-1"),
        good_event(properties=None),
        good_event(properties=["a"]),
        good_event(properties={"big": "x" * Limits().properties_bytes}),
        with_customer(external_id=""),
        with_customer(email="not an address"),
        with_customer(email=None),  # neither email nor phone
        with_customer(phone="12"),
        with_customer(name="x" * 201),
        with_customer(name="nul\x00"),
        with_customer(locale=""),
        with_customer(timezone="Mars/Olympus"),
        with_customer(preferred_channel="pigeon"),
        with_customer(consent="perhaps"),
        with_customer(attributes={"": "empty name"}),
        {key: value for key, value in good_event().items() if key != "id"},
        {key: value for key, value in good_event().items() if key != "customer"},
        [good_event()],
        None,
    ],
)
def test_an_event_the_schema_refuses_is_left_to_the_schema(event):
    assert schema_result(event) is None or event["type"] == "custom.type"
    assert load_crm_event_quickly(SCHEMA, event) is None


# Values near each field's limits, valid and not; the comparison below is what matters, not which is which.
# No lone surrogates: the edge refuses them before any schema (within_properties_limit would raise).
_TEXT = st.one_of(
    st.sampled_from(["", "a", "x" * 16, "x" * 17, "x" * 200, "x" * 201, " ", "Ayşe", "a\x00b"]),
    st.text(max_size=20),
)
_ANY = st.one_of(_TEXT, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just([]))
_CUSTOMER = st.fixed_dictionaries(
    {},
    optional={
        "external_id": st.one_of(_TEXT, _ANY),
        "email": st.one_of(
            st.sampled_from(["ana@example.com", " ana@example.com", "ana@", "a" * 320 + "@example.com"]), _ANY
        ),
        "phone": st.one_of(st.sampled_from(["+14155550123", "+90 532 123 45 67", "0532", "+1" * 30]), _ANY),
        "name": _ANY,
        "locale": _ANY,
        "timezone": st.one_of(st.sampled_from(["Europe/Istanbul", "UTC", "Nowhere/City"]), _ANY),
        "preferred_channel": st.one_of(st.sampled_from(["email", "sms", "whatsapp", "fax"]), _ANY),
        "consent": _ANY,
        "attributes": st.one_of(st.dictionaries(_TEXT, _ANY, max_size=3), _ANY),
        "first_name": _ANY,
        "properties": _ANY,
    },
)
_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(_TEXT, _ANY),
        "type": st.one_of(
            st.sampled_from(["purchase.completed", "support_call.ended", "site.visited", "custom.x", "Bad"]),
            _ANY,
        ),
        "occurred_at": st.one_of(
            st.sampled_from(
                [
                    "2026-11-26T10:00:00Z",
                    "2026-11-26T10:00:00+14:00",
                    "0001-01-01T00:00:00+14:00",
                    "2026-11-26T10:00:00",
                    "2026-13-01T00:00:00Z",
                ]
            ),
            _ANY,
        ),
        "customer": st.one_of(_CUSTOMER, _ANY),
        "properties": st.one_of(st.dictionaries(_TEXT, _ANY, max_size=3), _ANY),
        "source": _ANY,
        "order_id": _ANY,
    },
)


@settings(max_examples=400, deadline=None)
@given(_EVENT)
def test_the_quick_load_agrees_with_the_schema(event):
    quick = load_crm_event_quickly(SCHEMA, event)
    if quick is not None:
        assert quick == SCHEMA.load(event)
    elif event.get("type") in ("purchase.completed", "support_call.ended", "site.visited"):
        # Declined only what the schema refuses (a custom type is the schema's to decide, with the database).
        assert schema_result(event) is None


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["id", "type", "occurred_at", "customer", "properties", "extra"]),
    _EVENT,
    st.sampled_from(["external_id", "email", "phone", "name", "locale", "timezone", "attributes"]),
    _CUSTOMER,
)
def test_the_quick_load_agrees_with_the_schema_on_one_field_changed(name, drawn, customer_field, customer):
    # Mostly valid events, each with one field (of the event, or of its customer) drawn from the values above.
    event = good_event()
    if name in drawn:
        event[name] = drawn[name]
    if customer_field in customer and isinstance(event.get("customer"), dict):
        event["customer"] = {**event["customer"], customer_field: customer[customer_field]}
    quick = load_crm_event_quickly(SCHEMA, event)
    expected = schema_result(event)
    if quick is not None or event.get("type") in ("purchase.completed", "support_call.ended", "site.visited"):
        assert quick == expected
