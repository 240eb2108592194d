"""What an attacker or a careless integration sends: each answered with a 4xx problem naming the field,
nothing stored half-made, on SQLite (embedded mode) and on PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from services.dispatch.app import create_app as create_dispatch_app
from services.dispatch.models import InboundSms, ProviderEvent
from services.sentiment.app import create_app as create_sentiment_app
from services.survey.app import create_app as create_survey_app
from services.survey.models import CrmEvent, Customer, Response, ScoreClick
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.settings import Limits
from tests.conftest import TEST_SECRET, crm_event, make_settings, migrated_service, staff_client

PROBLEM = "application/problem+json"
TWILIO_TOKEN = "twilio-test-token"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def survey(database_url):
    with migrated_service("survey", make_settings(database_url)) as runtime:
        yield runtime


@pytest.fixture
def survey_client(survey):
    return staff_client(create_survey_app(survey), survey.identity)


@pytest.fixture
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def dispatch(database_url, sendgrid_key):
    der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = make_settings(
        database_url,
        twilio_auth_token=TWILIO_TOKEN,
        sendgrid_webhook_public_key=base64.b64encode(der).decode(),
    )
    with migrated_service("dispatch", settings) as runtime:
        yield runtime


@pytest.fixture
def dispatch_client(dispatch):
    return staff_client(create_dispatch_app(dispatch), dispatch.identity)


def _signed(body: str) -> tuple[bytes, dict[str, str]]:
    """A raw body signed as a CRM signs it (Standard Webhooks): the body need not be what json.dumps makes."""
    message_id = f"msg_{uuid.uuid4().hex}"
    now = utcnow()
    return body.encode(), {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(TEST_SECRET).sign(message_id, now, body),
    }


def _post_event(client, event: dict, raw: dict[str, str] | None = None):
    """Post ``event`` signed; ``raw`` replaces quoted placeholders by literal JSON text (NaN, 1e999)."""
    body = json.dumps(event)
    for placeholder, literal in (raw or {}).items():
        body = body.replace(json.dumps(placeholder), literal)
    data, headers = _signed(body)
    return client.post("/v1/events", data=data, headers=headers)


def _stored(runtime, *models) -> int:
    with runtime.database.transaction() as session:
        return sum(session.scalar(select(func.count()).select_from(model)) for model in models)


def _field_errors(response) -> dict:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return response.get_json().get("errors") or {}


# --- CRM events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"name": "Jane\x00Doe"}, "name"),
        ({"external_id": "crm\x0042"}, "external_id"),
        ({"name": "\ud800"}, "name"),
    ],
)
def test_unstorable_customer_text_is_refused_naming_the_field(survey, survey_client, customer, field):
    response = _post_event(survey_client, crm_event(**customer))

    assert response.status_code == 422
    assert field in _field_errors(response)["customer"]
    assert _stored(survey, CrmEvent, Customer) == 0


def test_nul_in_the_event_id_is_refused(survey, survey_client):
    response = _post_event(survey_client, crm_event(event_id="evt\x00-1"))

    assert response.status_code == 422 and "id" in _field_errors(response)
    assert _stored(survey, CrmEvent, Customer) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 30])
def test_numbers_json_cannot_carry_are_refused_in_properties(survey, survey_client, literal):
    event = crm_event()
    event["properties"] = {"amount": "__NUMBER__"}

    response = _post_event(survey_client, event, {"__NUMBER__": literal})

    assert response.status_code == 400
    assert _field_errors(response) == {"properties": {"amount": [response.get_json()["errors"]["properties"]
                                                                 ["amount"][0]]}}
    assert _stored(survey, CrmEvent, Customer) == 0


def test_lone_surrogate_in_a_property_is_refused(survey, survey_client):
    event = crm_event()
    event["properties"] = {"note": "\udc00"}

    response = _post_event(survey_client, event)

    assert response.status_code == 422 and "note" in _field_errors(response)["properties"]
    assert _stored(survey, CrmEvent, Customer) == 0


@pytest.mark.parametrize("depth", [40, 20_000])  # 20,000: past the parser's recursion limit
def test_deep_nesting_is_refused_naming_where(survey, survey_client, depth):
    event = crm_event()
    event["properties"] = {"nested": "__DEEP__"}

    response = _post_event(survey_client, event, {"__DEEP__": "[" * depth + "]" * depth})

    assert response.status_code == 400
    assert "nested" in _field_errors(response)["properties"]
    assert "Nested deeper than" in response.get_json()["detail"]
    assert _stored(survey, CrmEvent, Customer) == 0


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_occurred_at_that_overflows_in_utc_is_refused(survey, survey_client, moment):
    event = crm_event()
    event["occurred_at"] = moment

    response = _post_event(survey_client, event)

    assert response.status_code == 422 and "occurred_at" in _field_errors(response)
    assert _stored(survey, CrmEvent, Customer) == 0


@pytest.mark.parametrize("phone", ["+12025550123\n", "+١٢٠٢٥٥٥٠١٢٣"])
def test_phone_with_a_trailing_newline_or_other_digits_is_stored_as_plain_e164(survey, survey_client, phone):
    # Survey normalises phone numbers with phonenumbers (issue 14): what is stored is ASCII E.164, never the
    # newline or the other script's digits.
    response = _post_event(survey_client, crm_event(phone=phone))

    assert response.status_code == 202
    from services.survey import service

    service.decide_received_events(survey)  # the customer is made when the event is decided
    with survey.database.transaction() as session:
        assert session.scalars(select(Customer.phone)).all() == ["+12025550123"]


def test_phone_that_is_not_a_number_is_refused(survey, survey_client):
    response = _post_event(survey_client, crm_event(phone="+1 call me maybe"))

    assert response.status_code == 422 and "phone" in _field_errors(response)["customer"]
    assert _stored(survey, CrmEvent, Customer) == 0


def test_a_ten_megabyte_property_is_refused_before_it_is_read(survey, survey_client):
    event = crm_event()
    event["properties"] = {"blob": "x" * 10_000_000}

    response = _post_event(survey_client, event)

    assert response.status_code == 413 and response.mimetype == PROBLEM
    assert _stored(survey, CrmEvent, Customer) == 0


def test_properties_over_their_limit_are_refused_naming_them(survey, survey_client):
    event = crm_event()
    event["properties"] = {"blob": "x" * (Limits().properties_bytes + 1)}

    response = _post_event(survey_client, event)

    assert response.status_code == 422 and "properties" in _field_errors(response)
    assert _stored(survey, CrmEvent, Customer) == 0


def test_a_nul_in_a_query_string_or_path_of_a_staff_route_is_refused(survey_client):
    query = survey_client.get("/v1/customers/crm-42/decisions?limit=%00")
    path = survey_client.get("/v1/customers/crm%0042/decisions")

    assert query.status_code == 422 and "limit" in _field_errors(query)
    assert path.status_code == 404 and "external_id" in _field_errors(path)


def test_a_wrong_method_is_answered_405_with_allow(survey_client):
    response = survey_client.delete("/v1/events")

    assert response.status_code == 405 and response.mimetype == PROBLEM
    assert "POST" in response.headers["Allow"]


# --- The answer page ------------------------------------------------------------------------------------


def _invite(survey) -> str:
    from services.survey import service
    from services.survey.models import outbox

    service.accept_crm_event(survey, CrmEventSchema().load(crm_event()))
    service.decide_received_events(survey)  # what survey's clock does right after the intake
    with survey.database.transaction() as session:
        row = session.execute(select(outbox.c.payload)).all()[-1]
    return row.payload["data"]["message"]["answer_url"].rsplit("/", 1)[1]


@pytest.mark.parametrize("path", ["/s/%00", "/s/abc%00def"])
def test_a_nul_in_an_answer_link_is_not_found(survey_client, path):
    for response in (survey_client.get(path), survey_client.post(path, data={"score": "5"})):
        assert response.status_code == 404 and "token" in _field_errors(response)


@pytest.mark.parametrize("score", ["²", "１", "٣", "1²"])
def test_scores_in_other_digits_are_not_scores(survey, survey_client, score):
    token = _invite(survey)

    clicked = survey_client.get(f"/s/{token}", query_string={"score": score})
    posted = survey_client.post(f"/s/{token}", data={"score": score})

    assert clicked.status_code == 200 and "\" checked" not in clicked.get_data(as_text=True)
    assert posted.status_code == 422
    assert _stored(survey, ScoreClick, Response) == 0


def test_a_nul_in_a_comment_is_refused_naming_it(survey, survey_client):
    token = _invite(survey)

    response = survey_client.post(f"/s/{token}", data={"score": "4", "comment": "slow\x00"})

    assert response.status_code == 422 and "comment" in _field_errors(response)
    assert _stored(survey, Response) == 0


def test_a_long_comment_is_cut_and_the_customer_is_told(survey, survey_client):
    token = _invite(survey)
    limit = Limits().comment_chars

    response = survey_client.post(f"/s/{token}", data={"score": "4", "comment": "a" * (limit + 10)})

    assert response.status_code == 200
    assert f"we kept the first {limit}" in response.get_data(as_text=True)
    with survey.database.transaction() as session:
        assert len(session.scalars(select(Response)).one().comment) == limit


def test_an_answer_form_over_its_limit_is_refused(survey, survey_client):
    token = _invite(survey)

    response = survey_client.post(f"/s/{token}", data={"score": "4", "comment": "a" * 100_000})

    assert response.status_code == 413
    assert _stored(survey, Response) == 0


# --- Dispatch: links, queries, provider webhooks ----------------------------------------------------------


def test_a_nul_in_an_unsubscribe_link_is_not_found(dispatch_client):
    for response in (dispatch_client.get("/unsubscribe/%00"), dispatch_client.post("/unsubscribe/%00")):
        assert response.status_code == 404 and "delivery_id" in _field_errors(response)


def test_a_nul_in_the_deliveries_query_is_refused(dispatch_client):
    response = dispatch_client.get("/v1/deliveries?invitation_id=%00")

    assert response.status_code == 422 and "invitation_id" in _field_errors(response)


def _twilio_post(client, path, form):
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"http://testserver{path}", form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"MessageSid": "SM1", "From": "whatsapp:+1" + "2" * 30, "Body": "9"}, "From", 400),
        ({"MessageSid": "SM" + "a" * 63, "From": "+12025550123", "Body": "9"}, "MessageSid", 400),
        ({"MessageSid": "SM2", "From": "+12025550123", "Body": "nine\x00"}, "Body", 422),
    ],
)
def test_signed_twilio_sms_with_unstorable_fields_is_refused(dispatch, dispatch_client, form, field, status):
    response = _twilio_post(dispatch_client, "/webhooks/twilio/sms", form)

    assert response.status_code == status and field in _field_errors(response)
    assert _stored(dispatch, InboundSms) == 0


def test_signed_twilio_status_with_an_overlong_sid_is_refused(dispatch, dispatch_client):
    form = {"MessageSid": "SM" + "a" * 63, "MessageStatus": "delivered"}

    response = _twilio_post(dispatch_client, "/webhooks/twilio/status", form)

    assert response.status_code == 400 and "MessageSid" in _field_errors(response)
    assert _stored(dispatch, ProviderEvent) == 0


def _post_sendgrid(client, key, body: bytes, content_type="application/json"):
    timestamp = str(int(utcnow().timestamp()))
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": content_type,
    }
    return client.post("/webhooks/sendgrid/events", data=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"event": "delivered"}', "application/json"),
        (b"not json at all", "application/json"),
        (b"not json at all", "text/plain"),
    ],
)
def test_signed_sendgrid_body_that_is_not_an_array_is_refused(
    dispatch, dispatch_client, sendgrid_key, body, content_type
):
    response = _post_sendgrid(dispatch_client, sendgrid_key, body, content_type)

    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert _stored(dispatch, ProviderEvent) == 0


# --- Sentiment ----------------------------------------------------------------------------------------------


@pytest.fixture
def sentiment_client(sqlite_url):
    with migrated_service("sentiment", make_settings(sqlite_url)) as runtime:
        yield staff_client(create_sentiment_app(runtime), runtime.identity)


def test_analyze_with_json_nested_100000_deep_is_refused(sentiment_client):
    body = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = sentiment_client.post("/v1/analyze", data=body, content_type="application/json")

    assert response.status_code == 400 and "text" in _field_errors(response)


def test_a_batch_over_its_total_size_is_refused_before_scoring(sentiment_client):
    texts = ["The agent was rude and slow. " * 170] * 30  # 30 texts of about 5,000 characters

    response = sentiment_client.post("/v1/analyze/batch", json={"texts": texts})

    assert response.status_code == 422 and "texts" in _field_errors(response)


def test_a_text_over_its_limit_is_refused(sentiment_client):
    response = sentiment_client.post("/v1/analyze", json={"text": "a" * (Limits().sentiment_text_chars + 1)})

    assert response.status_code == 422 and "text" in _field_errors(response)


def test_limits_come_from_the_settings(sqlite_url):
    settings = replace(make_settings(sqlite_url), limits=Limits(sentiment_text_chars=10))
    with migrated_service("sentiment", settings) as runtime:
        client = staff_client(create_sentiment_app(runtime), runtime.identity)
        assert client.post("/v1/analyze", json={"text": "a" * 11}).status_code == 422
        assert client.post("/v1/analyze", json={"text": "a" * 10}).status_code == 200


def test_a_signed_sendgrid_event_with_an_overlong_id_is_skipped_and_the_rest_applied(
    dispatch, dispatch_client, sendgrid_key
):
    now = int(utcnow().timestamp())
    events = [
        {"event": "delivered", "timestamp": now, "sg_event_id": "e" * 300},
        {"event": "delivered", "timestamp": now, "sg_event_id": "ev-ok"},
    ]

    response = _post_sendgrid(dispatch_client, sendgrid_key, json.dumps(events).encode())

    assert response.status_code == 204
    assert _stored(dispatch, ProviderEvent) == 1
