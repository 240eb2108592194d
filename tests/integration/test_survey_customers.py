"""The customers API on PostgreSQL: create or replace, read, search; bad values are 422s naming the field."""

from __future__ import annotations

from services.survey.app import create_app as create_survey_app
from shared.principal import Role
from tests.conftest import crm_event, staff_client
from tests.survey_intake import post_and_decide


def test_put_creates_a_customer_then_replaces_it_normalising_the_phone(survey_client):
    body = {
        "name": "Ayşe Yılmaz",
        "email": "ayse@example.com",
        "phone": "+90 (532) 123 45 67",
        "preferred_channel": "sms",
        "locale": "tr",
        "timezone": "Europe/Istanbul",
        "consent": True,
        "attributes": {"plan": "pro", "region": "emea"},
    }
    created = survey_client.put("/v1/customers/crm-7", json=body)
    assert created.status_code == 201
    assert created.get_json()["phone"] == "+905321234567"

    updated = survey_client.put("/v1/customers/crm-7", json={**body, "attributes": {"plan": "team"}})

    assert updated.status_code == 200
    shown = survey_client.get("/v1/customers/crm-7").get_json()
    assert shown["attributes"] == {"plan": "team"} and shown["timezone"] == "Europe/Istanbul"
    assert shown["opted_out_channels"] == [] and shown["consent"] is True


def test_a_bad_value_is_a_422_naming_each_field_and_stores_nothing(survey_client):
    response = survey_client.put(
        "/v1/customers/crm-7",
        json={"phone": "0532 123", "email": "jane@", "timezone": "Mars/Olympus", "colour": "blue"},
    )
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"phone", "email", "timezone", "colour"}
    assert survey_client.get("/v1/customers/crm-7").status_code == 404


def test_customers_are_searched_by_text_and_attribute_a_page_at_a_time(survey_client):
    for number, plan, region in ((1, "pro", "emea"), (2, "free", "emea"), (3, "pro", "amer")):
        survey_client.put(
            f"/v1/customers/crm-{number}",
            json={
                "name": f"Customer {number}",
                "email": f"c{number}@example.com",
                "attributes": {"plan": plan, "region": region},
            },
        )

    pros = survey_client.get("/v1/customers?attribute=plan=pro&page_size=1")
    assert pros.headers["X-Total-Count"] == "2"
    assert [c["external_id"] for c in pros.get_json()] == ["crm-1"]
    second = survey_client.get("/v1/customers?attribute=plan=pro&page_size=1&page=2").get_json()
    assert [c["external_id"] for c in second] == ["crm-3"]
    both = survey_client.get("/v1/customers?attribute=plan=pro&attribute=region=amer").get_json()
    assert [c["external_id"] for c in both] == ["crm-3"]
    assert [c["external_id"] for c in survey_client.get("/v1/customers?q=C2@EXAMPLE").get_json()] == ["crm-2"]
    # A % typed in the search is a character, not a wildcard.
    assert survey_client.get("/v1/customers?q=%25").get_json() == []


def test_a_crm_event_updates_the_customer_staff_created(survey, survey_client):
    survey_client.put(
        "/v1/customers/crm-42", json={"email": "old@example.com", "attributes": {"plan": "pro"}}
    )
    event = crm_event(email="jane@example.com", phone="+1 555 555 0100")
    answer, _ = post_and_decide(survey_client, survey, event)
    assert answer.status_code == 202

    shown = survey_client.get("/v1/customers/crm-42").get_json()
    assert (shown["email"], shown["phone"], shown["attributes"]) == (
        "jane@example.com",
        "+15555550100",
        {"plan": "pro"},
    )


def test_customers_are_for_staff_only(survey):
    stranger = create_survey_app(survey).test_client()
    assert stranger.get("/v1/customers").status_code == 401
    assert stranger.put("/v1/customers/crm-7", json={}).status_code == 401
    agent = staff_client(create_survey_app(survey), survey.identity, Role.AGENT)
    assert agent.get("/v1/customers").status_code == 200


def test_input_postgresql_cannot_store_is_refused_never_a_500(survey_client):
    for url in (
        "/v1/customers?q=%00",
        '/v1/customers?attribute=a"b=1',
        "/v1/customers?attribute=a'b=1",
        "/v1/customers?attribute=plan=p%00",
        "/v1/customers/a%00b",
        "/v1/customers/a%00b/decisions",
    ):
        assert survey_client.get(url).status_code < 500, url
    # A NUL in a path is refused by every app's edge as a path that names nothing (shared/edge.py).
    assert survey_client.put("/v1/customers/a%00b", json={}).status_code == 404
    assert survey_client.put("/v1/customers/ab", json={"locale": "e\x00n"}).status_code == 422
    assert survey_client.put("/v1/customers/ab", json={"attributes": {"pl\x00an": "pro"}}).status_code == 422
