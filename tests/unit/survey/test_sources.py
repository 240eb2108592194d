"""Vendor formats without I/O: signatures checked as the vendors document them, payloads mapped."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import ValidationError

from services.survey import service, sources
from services.survey.schemas import VendorEventSchema
from shared.http import ConflictError
from shared.settings import EventSource
from shared.signing import WebhookVerificationError

from .fakes import FakeSurveyUnitOfWork, fake_runtime

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def test_shopify_signature_is_base64_hmac_of_the_raw_body():
    body = b'{"id": 1}'
    signature = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "w1",
    }

    assert sources.verify_shopify("secret", headers, body) == "w1"
    with pytest.raises(WebhookVerificationError):
        sources.verify_shopify("other", headers, body)
    with pytest.raises(WebhookVerificationError, match="missing"):
        sources.verify_shopify("secret", {**headers, "X-Shopify-Webhook-Id": ""}, body)


def zendesk_headers(secret: str, timestamp: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def test_zendesk_signature_covers_the_timestamp_and_the_body():
    body = b'{"id": "e1"}'
    headers = zendesk_headers("secret", "2026-11-26T14:58:00Z", body)

    sources.verify_zendesk("secret", headers, body, NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        sources.verify_zendesk("secret", headers, body + b" ", NOW)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        sources.verify_zendesk(
            "secret", {**headers, "X-Zendesk-Webhook-Signature-Timestamp": "2026-11-26T14:59:00Z"}, body, NOW
        )


@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_zendesk_timestamp_outside_five_minutes_is_refused(age):
    signed_at = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        sources.verify_zendesk("secret", zendesk_headers("secret", signed_at, b"{}"), b"{}", NOW)


def test_zendesk_timestamp_that_is_no_time_is_refused():
    with pytest.raises(WebhookVerificationError, match="not a time"):
        sources.verify_zendesk("secret", zendesk_headers("secret", "yesterday", b"{}"), b"{}", NOW)


def test_a_guest_checkout_is_known_by_its_email():
    headers = {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "w1"}
    order = {"id": 5, "email": "guest@example.com", "total_price": "12.50", "processed_at": NOW.isoformat()}

    event = VendorEventSchema().load(sources.shopify_event("shop", headers, order))

    assert event["customer"]["external_id"] == "shop:guest@example.com"
    assert event["properties"]["amount"] == 12.5 and event["type"] == "purchase.completed"


def test_a_shopify_order_without_customer_or_email_is_refused_naming_the_customer():
    headers = {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "w1"}
    mapped = sources.shopify_event("shop", headers, {"id": 5, "processed_at": NOW.isoformat()})
    with pytest.raises(ValidationError) as refused:
        VendorEventSchema().load(mapped)
    assert refused.value.messages == {"customer": {"external_id": ["Missing data for required field."]}}


def test_zendesk_events_other_than_a_solved_ticket_are_ignored():
    created = {"type": "zen:event-type:ticket.created", "event": {"current": {"status": "Open"}}}
    assert isinstance(sources.zendesk_event("helpdesk", created), sources.Ignored)


def test_sources_from_the_settings_come_first_and_staff_add_others():
    survey = fake_runtime(FakeSurveyUnitOfWork())
    survey.settings = replace(
        survey.settings, sources={"shop": EventSource("shop", "shopify", "from-settings")}
    )

    view, added = service.put_source(survey, "helpdesk", "zendesk", "zendesk-secret")

    assert added and view.path == "/v1/sources/helpdesk/zendesk"
    assert service.find_source(survey, "helpdesk") == EventSource("helpdesk", "zendesk", "zendesk-secret")
    assert service.find_source(survey, "shop").secret == "from-settings"
    assert service.find_source(survey, "nobody") is None
    with pytest.raises(ConflictError):
        service.put_source(survey, "shop", "shopify", "another-secret")
    assert [(v.name, v.configured_in) for v in service.list_sources(survey)] == [
        ("default", "default"),
        ("helpdesk", "api"),
        ("shop", "settings"),
    ]
