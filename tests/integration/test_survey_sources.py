"""CRM event sources on PostgreSQL: our format with a source's own secret, Shopify's order webhooks and
Zendesk's event webhooks, each signed exactly as the vendor's documentation says (not with our code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.survey import service
from services.survey.app import create_app as create_survey_app
from services.survey.models import CrmEvent, Customer
from shared.clock import utcnow
from shared.principal import Role
from shared.settings import Settings
from tests.conftest import (
    TEST_SECRET,
    crm_event,
    make_settings,
    migrated_service,
    signed_request,
    staff_client,
)
from tests.survey_intake import decision_of

SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
ZENDESK_SECRET = "dGhpc19zZHNpZ25pbmdfc2VjcmV0X2Zyb21femVuZGVzaw"
ERP_SECRET = "whsec_" + base64.b64encode(b"the-erp-source-secret-32-bytes!!").decode()


@pytest.fixture
def survey(postgres_url):
    settings = Settings.from_env(
        {
            "CLOSELOOP_SOURCES": "shop:shopify, helpdesk:zendesk, erp:standard",
            "CLOSELOOP_SOURCE_SHOP_SECRET": SHOPIFY_SECRET,
            "CLOSELOOP_SOURCE_HELPDESK_SECRET": ZENDESK_SECRET,
            "CLOSELOOP_SOURCE_ERP_SECRET": ERP_SECRET,
        }
    )
    with migrated_service("survey", make_settings(postgres_url, sources=settings.sources)) as runtime:
        yield runtime


@pytest.fixture
def client(survey):
    # A stranger: the vendors' routes are open, their signatures are the guard.
    return create_survey_app(survey).test_client()


@pytest.fixture
def staff(survey):
    return staff_client(create_survey_app(survey), survey.identity)


def decided(survey, staff, response) -> dict[str, Any]:
    """The decision the survey clock takes right after the intake's answer, as staff read it."""
    service.decide_received_events(survey)
    return decision_of(staff, response)


def _count(survey, what) -> int:
    with survey.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(what))


# --- Shopify ---------------------------------------------------------------------------------------------


def shopify_order(**changes: Any) -> dict[str, Any]:
    """An order webhook as Shopify's orders/paid example payload has it (trimmed of fields we do not read)."""
    order = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "email": "jon@example.com",
        "closed_at": None,
        "created_at": "2021-12-31T19:00:00-05:00",
        "updated_at": "2021-12-31T19:00:00-05:00",
        "number": 234,
        "note": None,
        "token": "123456abcd",
        "currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "name": "#9999",
        "order_number": 1234,
        "phone": None,
        "customer_locale": "en",
        "processed_at": "2021-12-31T19:00:00-05:00",
        "total_price": "403.00",
        "subtotal_price": "393.00",
        "total_tax": "0.00",
        "tags": "tag1, tag2",
        "billing_address": {
            "first_name": "Steve",
            "address1": "123 Shipping Street",
            "phone": "555-555-SHIP",
            "city": "Shippington",
            "zip": "40003",
            "province": "Kentucky",
            "country": "United States",
            "last_name": "Shipper",
            "country_code": "US",
        },
        "customer": {
            "id": 115310627314723954,
            "email": "john@example.com",
            "accepts_marketing": False,
            "created_at": None,
            "updated_at": None,
            "first_name": "John",
            "last_name": "Smith",
            "state": "disabled",
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": None,
            "tags": "",
            "currency": "USD",
            "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954",
            "default_address": {
                "id": 715243470612851245,
                "customer_id": 115310627314723954,
                "first_name": None,
                "last_name": None,
                "address1": "123 Elm St.",
                "city": "Ottawa",
                "province": "Ontario",
                "country": "Canada",
                "zip": "K2H7A8",
                "phone": "123-123-1234",
                "country_code": "CA",
                "default": True,
            },
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "name": "IPod Nano - 8GB",
                "price": "199.00",
                "quantity": 1,
                "sku": "IPOD2008PINK",
                "product_id": 632910392,
                "variant_id": 808950810,
            }
        ],
    }
    order.update(changes)
    return order


def shopify_post(client, order, topic="orders/paid", webhook_id=None, secret=SHOPIFY_SECRET, source="shop"):
    body = json.dumps(order).encode()
    # As Shopify's documentation says: base64 of the HMAC-SHA256 digest of the raw body, keyed by the secret.
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": utcnow().isoformat(),
    }
    return client.post(f"/v1/sources/{source}/shopify", data=body, headers=headers)


def test_a_paid_shopify_order_is_a_purchase_and_invites_its_customer(survey, client, staff):
    response = shopify_post(client, shopify_order())

    assert response.status_code == 202 and response.get_json()["status"] == "accepted"
    outcome = decided(survey, staff, response)
    assert (outcome["decision"], outcome["reason_code"]) == ("invited", "invited")
    with survey.database.transaction() as session:
        event = session.scalars(select(CrmEvent)).one()
        customer = session.get(Customer, event.customer_id)
        assert (event.source, event.type) == ("shop", "purchase.completed")
        assert event.properties["amount"] == 403.0 and event.properties["order_name"] == "#9999"
        assert (customer.external_id, customer.email, customer.name) == (
            "shop:115310627314723954",
            "john@example.com",
            "John Smith",
        )


def test_a_fulfilled_order_counts_and_a_repeated_webhook_id_is_a_duplicate(survey, client):
    first = shopify_post(client, shopify_order(), topic="orders/fulfilled", webhook_id="b54557e4-bdd9")
    again = shopify_post(client, shopify_order(), topic="orders/fulfilled", webhook_id="b54557e4-bdd9")

    assert first.status_code == 202
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["status"] == "duplicate"
    assert again.get_json()["event_id"] == first.get_json()["event_id"]
    assert _count(survey, CrmEvent) == 1


def test_a_wrong_shopify_signature_is_refused_and_stores_nothing(survey, client):
    response = shopify_post(client, shopify_order(), secret="shpss_someone_else")
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert _count(survey, CrmEvent) == 0


def test_a_shopify_body_changed_after_signing_is_refused(survey, client):
    body = json.dumps(shopify_order()).encode()
    signature = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    tampered = body.replace(b"403.00", b"4.00")
    response = client.post(
        "/v1/sources/shop/shopify",
        data=tampered,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Webhook-Id": "w-1",
        },
    )
    assert response.status_code == 401


def test_a_topic_that_is_not_surveyed_is_acknowledged_and_ignored(survey, client):
    response = shopify_post(client, shopify_order(), topic="orders/create")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored" and "links" not in response.get_json()
    assert _count(survey, CrmEvent) == 0


def test_a_shopify_order_with_a_bad_phone_is_a_422_naming_it(survey, client):
    order = shopify_order()
    order["customer"]["phone"] = "call me"
    response = shopify_post(client, order)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["customer"]) == {"phone"}
    assert _count(survey, CrmEvent) == 0


def test_a_shopify_phone_is_stored_in_e164(survey, client):
    order = shopify_order()
    order["customer"]["phone"] = "+1 (555) 555-0100"
    assert shopify_post(client, order).status_code == 202
    service.decide_received_events(survey)
    with survey.database.transaction() as session:
        assert session.scalars(select(Customer.phone)).one() == "+15555550100"


def test_an_unknown_source_or_a_source_of_another_format_is_not_found(client):
    assert shopify_post(client, shopify_order(), source="nobody").status_code == 404
    assert shopify_post(client, shopify_order(), source="helpdesk").status_code == 404


# --- Zendesk ---------------------------------------------------------------------------------------------


def zendesk_status_changed(current="SOLVED", requester_id="20978392", event_id=None) -> dict[str, Any]:
    """zen:event-type:ticket.status_changed as Zendesk's webhook event types reference shows it."""
    return {
        "account_id": 12514403,
        "detail": {
            "actor_id": "8447388090494",
            "assignee_id": "8447388090494",
            "brand_id": "8447346621310",
            "created_at": "2025-01-08T10:12:07Z",
            "custom_status": "8447320465790",
            "description": "ticket_description",
            "external_id": None,
            "form_id": "8646151517822",
            "group_id": "8447320466430",
            "id": "35436",
            "is_public": True,
            "organization_id": "8447346622462",
            "priority": "LOW",
            "requester_id": requester_id,
            "status": current,
            "subject": "ticket_subject",
            "submitter_id": "8447388090494",
            "tags": ["enterprise"],
            "type": "TASK",
            "updated_at": "2025-01-08T10:12:07Z",
            "via": {"channel": "web_service"},
        },
        "event": {"current": current, "previous": "OPEN"},
        "id": event_id or str(uuid.uuid4()),
        "subject": "zen:ticket:35436",
        "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": "zen:event-type:ticket.status_changed",
        "zendesk_event_version": "2022-11-06",
    }


def zendesk_post(client, payload, secret=ZENDESK_SECRET, signed_at=None):
    body = json.dumps(payload).encode()
    timestamp = (signed_at or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")
    # As Zendesk's documentation says: base64(HMACSHA256(TIMESTAMP + BODY)) with the signing secret.
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
    return client.post("/v1/sources/helpdesk/zendesk", data=body, headers=headers)


def test_a_solved_ticket_surveys_the_requester_staff_gave_an_address(survey, client, staff):
    staff.put("/v1/customers/helpdesk:20978392", json={"email": "requester@example.com"})

    response = zendesk_post(client, zendesk_status_changed())

    assert response.status_code == 202
    decision = decided(survey, staff, response)
    assert (decision["decision"], decision["reason"]) == (
        "invited",
        "support_call survey",
    )
    with survey.database.transaction() as session:
        event = session.scalars(select(CrmEvent)).one()
        assert (event.source, event.type, event.properties["ticket_id"]) == (
            "helpdesk",
            "support_call.ended",
            "35436",
        )


def test_a_solved_ticket_of_a_requester_without_an_address_is_skipped_saying_so(survey, client, staff):
    response = zendesk_post(client, zendesk_status_changed(requester_id="777"))
    assert response.status_code == 202
    decision = decided(survey, staff, response)
    assert (decision["decision"], decision["reason_code"]) == ("skipped", "no_contact")


def test_a_repeated_zendesk_event_is_a_duplicate(survey, client):
    assert zendesk_post(client, zendesk_status_changed(event_id="ev-1")).status_code == 202
    again = zendesk_post(client, zendesk_status_changed(event_id="ev-1"))
    assert again.status_code == 200 and again.get_json()["duplicate"] is True


def test_a_status_other_than_solved_is_ignored(survey, client):
    response = zendesk_post(client, zendesk_status_changed(current="PENDING"))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert _count(survey, CrmEvent) == 0


def test_a_wrong_or_stale_zendesk_signature_is_refused(survey, client):
    assert zendesk_post(client, zendesk_status_changed(), secret="another-secret").status_code == 401
    stale = zendesk_post(client, zendesk_status_changed(), signed_at=utcnow() - timedelta(minutes=6))
    assert stale.status_code == 401 and "tolerance" in stale.get_json()["detail"]
    assert _count(survey, CrmEvent) == 0


# --- Our own format, per source --------------------------------------------------------------------------


def test_a_standard_source_signs_with_its_own_secret_and_its_ids_are_its_own(survey, client):
    body, headers = signed_request(crm_event("order-1"), secret=ERP_SECRET)
    assert client.post("/v1/sources/erp/events", data=body, headers=headers).status_code == 202
    # The default source's secret does not open another source's door, and the reverse.
    body, headers = signed_request(crm_event("order-2"), secret=TEST_SECRET)
    assert client.post("/v1/sources/erp/events", data=body, headers=headers).status_code == 401
    body, headers = signed_request(crm_event("order-3"), secret=ERP_SECRET)
    assert client.post("/v1/events", data=body, headers=headers).status_code == 401
    # The same CRM id from the default source is another event.
    body, headers = signed_request(crm_event("order-1"))
    response = client.post("/v1/events", data=body, headers=headers)
    assert response.status_code == 202 and response.get_json()["duplicate"] is False


def test_managers_see_the_sources_without_their_secrets(survey):
    manager = staff_client(create_survey_app(survey), survey.identity, Role.MANAGER)
    listed = manager.get("/v1/sources")
    assert listed.status_code == 200
    assert {source["name"]: source["path"] for source in listed.get_json()} == {
        "default": "/v1/events",
        "erp": "/v1/sources/erp/events",
        "helpdesk": "/v1/sources/helpdesk/zendesk",
        "shop": "/v1/sources/shop/shopify",
    }
    assert SHOPIFY_SECRET not in listed.get_data(as_text=True)
    assert {source["configured_in"] for source in listed.get_json()} == {"default", "settings"}
    agent = staff_client(create_survey_app(survey), survey.identity, Role.AGENT)
    assert agent.get("/v1/sources").status_code == 403


def test_a_manager_adds_a_source_whose_secret_is_write_only_and_removes_it(survey, client):
    manager = staff_client(create_survey_app(survey), survey.identity, Role.MANAGER)

    added = manager.put("/v1/sources/shop-eu", json={"format": "shopify", "secret": "shpss_eu_secret_1"})

    assert added.status_code == 201
    assert added.get_json() == {
        "name": "shop-eu",
        "format": "shopify",
        "path": "/v1/sources/shop-eu/shopify",
        "configured_in": "api",
    }
    assert "shpss_eu_secret_1" not in manager.get("/v1/sources").get_data(as_text=True)
    assert (
        shopify_post(client, shopify_order(), source="shop-eu", secret="shpss_eu_secret_1").status_code == 202
    )
    # A rotated secret takes over at once.
    rotated = manager.put("/v1/sources/shop-eu", json={"format": "shopify", "secret": "shpss_eu_secret_2"})
    assert rotated.status_code == 200
    assert (
        shopify_post(client, shopify_order(), source="shop-eu", secret="shpss_eu_secret_1").status_code == 401
    )

    assert manager.delete("/v1/sources/shop-eu").status_code == 204
    assert (
        shopify_post(client, shopify_order(), source="shop-eu", secret="shpss_eu_secret_2").status_code == 404
    )


def test_sources_from_the_settings_are_changed_there_and_bad_ones_are_named(survey):
    manager = staff_client(create_survey_app(survey), survey.identity, Role.MANAGER)
    assert manager.put("/v1/sources/shop", json={"format": "shopify", "secret": "x" * 10}).status_code == 409
    assert manager.delete("/v1/sources/default").status_code == 409
    bad = manager.put("/v1/sources/erp2", json={"format": "standard", "secret": "not-a-whsec"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"secret"}
    assert (
        manager.put("/v1/sources/Bad Name", json={"format": "zendesk", "secret": "x" * 10}).status_code == 422
    )
    agent = staff_client(create_survey_app(survey), survey.identity, Role.AGENT)
    assert agent.put("/v1/sources/erp2", json={"format": "zendesk", "secret": "x" * 10}).status_code == 403


def test_the_openapi_document_describes_the_sources_routes(client):
    paths = client.get("/openapi/survey.json").get_json()["paths"]
    for route in (
        "/v1/sources/{source}/shopify",
        "/v1/sources/{source}/zendesk",
        "/v1/sources/{source}/events",
    ):
        assert paths[route]["post"]["security"] == []
    assert "401" in paths["/v1/sources/{source}/shopify"]["post"]["responses"]
