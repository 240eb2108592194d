"""Schemathesis against each service's served OpenAPI document, on PostgreSQL: whatever it generates (valid
or not), no answer is a server error, and every answer conforms to what the document says (status code,
content type, headers, body schema; errors as problem+json). CRM events are signed as a real CRM signs them
(Standard Webhooks), so the intake is fuzzed past its signature check; staff routes get an admin's API key.
Beside the documents: signed CRM events, Twilio webhooks and SendGrid event batches with arbitrary content.

Bounded by ``FUZZ_EXAMPLES`` examples per operation (default 12), so the four services take about a minute.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from closeloop.services import SERVICES
from shared.clock import utcnow
from shared.principal import Role
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, make_settings, migrated_service

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The intake a CRM posts to, signed; the rest of the survey API is for staff.
SIGNED_OPERATIONS = {("POST", "/v1/events")}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: CI fails on a change, not on luck
    phases=[Phase.explicit, Phase.generate],
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@contextmanager
def _postgres_database() -> Iterator[str]:
    name = f"closeloop_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class ServedApi:
    """One service's app on its own database, its served OpenAPI document, and an admin's API key."""

    def __init__(self, name: str, runtime: Any) -> None:
        self.app = SERVICES[name].create_app(runtime)
        _, key = runtime.identity.create_api_key("fuzzing", Role.ADMIN, "tests")
        self.headers = {"Authorization": f"Bearer {key}"}
        self.schema = schemathesis.openapi.from_wsgi(f"/openapi/{name}.json", self.app)

    def call_and_validate(self, case: Any) -> None:
        if (case.method.upper(), case.path) in SIGNED_OPERATIONS:
            response = case.call(app=self.app, **_signed(case))
        else:
            response = case.call(app=self.app, headers=self.headers)
        case.validate_response(response, checks=CHECKS)


def _signed(case: Any) -> dict[str, Any]:
    """The generated body, serialized once and signed over exactly those bytes, as a CRM does."""
    if isinstance(case.body, NotSet):
        body = b""
    elif isinstance(case.body, bytes):  # negative cases: whatever bytes, signed all the same
        body = case.body
    else:
        body = json.dumps(case.body).encode()
    message_id = f"msg_{uuid.uuid4().hex}"
    now = utcnow()
    return {
        "data": body,
        "headers": {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(TEST_SECRET).sign(message_id, now, body.decode("utf-8", "replace")),
        },
    }


@pytest.fixture(scope="module", params=sorted(SERVICES))
def served_api(request) -> Iterator[ServedApi]:
    with _postgres_database() as url, migrated_service(request.param, make_settings(url)) as runtime:
        yield ServedApi(request.param, runtime)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_generated_request_is_answered_as_documented_without_a_server_error(served_api, mode):
    failures = []
    operations = [result.ok() for result in served_api.schema.get_all_operations()]
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def answered_as_documented(case: Any) -> None:
            served_api.call_and_validate(case)

        try:
            answered_as_documented()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body schema
            continue
        except Exception as failure:  # every operation is fuzzed; all failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    assert operations
    assert not failures, "\n\n".join(failures)


# Text the edge lets through (no NUL, no lone surrogate), short or long: so the cases reach the use cases and
# the database rather than stopping at the edge, which has tests of its own.
_STORABLE = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
_TEXT = st.text(_STORABLE, max_size=50)
_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _crm_events(draw: st.DrawFn) -> dict[str, Any]:
    """Valid events as a CRM sends them, with arbitrary text and JSON wherever a CRM's own data goes, and
    times anywhere in the years 1 to 9999 with any offset: so most get past validation to the database."""
    customer = {
        "external_id": draw(st.text(_STORABLE, min_size=1, max_size=220)),
        "email": draw(st.emails()),
        "phone": draw(st.one_of(st.none(), st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"))),
        "name": draw(st.one_of(st.none(), st.text(_STORABLE, max_size=220))),
        "locale": draw(st.sampled_from(["en", "tr", "tr-TR", "de", "pt-BR"])),
        "timezone": draw(st.sampled_from([None, "Europe/Istanbul", "America/New_York", "Asia/Tokyo"])),
        "preferred_channel": draw(st.sampled_from([None, "email", "sms"])),
        "attributes": draw(st.dictionaries(_TEXT, _JSON, max_size=3)),
    }
    offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    occurred_at = draw(
        st.one_of(
            st.datetimes(timezones=offsets),
            # The first and last moments Python has, at any offset: past either end once in UTC.
            st.sampled_from([datetime.min, datetime.max]).flatmap(  # noqa: DTZ901 (the offset is added)
                lambda edge: offsets.map(lambda zone: edge.replace(tzinfo=zone))
            ),
            st.just(utcnow()),
        )
    )
    return {
        "id": draw(st.text(_STORABLE, min_size=1, max_size=220)),
        "type": draw(st.sampled_from(["purchase.completed", "support_call.ended", "site.visited"])),
        "occurred_at": occurred_at.isoformat(),
        "customer": customer,
        "properties": draw(st.dictionaries(_TEXT, _JSON, max_size=5)),
    }


@pytest.fixture(scope="module")
def survey_api() -> Iterator[ServedApi]:
    with _postgres_database() as url, migrated_service("survey", make_settings(url)) as runtime:
        yield ServedApi("survey", runtime)


def test_signed_crm_events_with_arbitrary_content_are_stored_or_refused_never_a_500(survey_api):
    client = survey_api.app.test_client()
    statuses: set[int] = set()

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 5)
    @given(event=_crm_events())
    def stored_or_refused(event: dict[str, Any]) -> None:
        body = json.dumps(event)
        message_id = f"msg_{uuid.uuid4().hex}"
        now = utcnow()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(TEST_SECRET).sign(message_id, now, body),
        }
        response = client.post("/v1/events", data=body.encode(), headers=headers)
        statuses.add(response.status_code)
        assert response.status_code in (200, 202, 400, 422), response.get_data(as_text=True)
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"

    stored_or_refused()
    assert 202 in statuses  # the intake was reached, not only its validation


TWILIO_TOKEN = "twilio-fuzz-token"


@pytest.fixture(scope="module")
def twilio_signed_dispatch() -> Iterator[Any]:
    with _postgres_database() as url, migrated_service(
        "dispatch", make_settings(url, twilio_auth_token=TWILIO_TOKEN)
    ) as runtime:
        yield SERVICES["dispatch"].create_app(runtime).test_client()


_FORM_TEXT = st.text(_STORABLE, max_size=80) | st.text(_STORABLE, min_size=60, max_size=2000)


@st.composite
def _twilio_posts(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """An inbound SMS or a status callback, validly signed, with whatever a careless gateway might put in."""
    if draw(st.booleans()):
        form = {
            "MessageSid": draw(st.one_of(st.from_regex(r"\ASM[0-9a-f]{32}\Z"), _FORM_TEXT)),
            "From": draw(st.one_of(st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"), _FORM_TEXT)),
            "Body": draw(_FORM_TEXT),
        }
        return "/webhooks/twilio/sms", form
    form = {
        "MessageSid": draw(st.one_of(st.from_regex(r"\ASM[0-9a-f]{32}\Z"), _FORM_TEXT)),
        "MessageStatus": draw(st.sampled_from(["queued", "sent", "delivered", "failed", "undelivered", "x"])),
        "ErrorCode": draw(st.one_of(st.just(""), st.sampled_from(["21610", "30003"]), _FORM_TEXT)),
    }
    return "/webhooks/twilio/status", form


def test_signed_twilio_webhooks_with_arbitrary_fields_are_answered_never_a_500(twilio_signed_dispatch):
    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 5)
    @given(post=_twilio_posts())
    def answered(post: tuple[str, dict[str, str]]) -> None:
        path, form = post
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"http://testserver{path}", form)
        response = twilio_signed_dispatch.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code in (200, 204, 400, 422), response.get_data(as_text=True)
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"

    answered()


@st.composite
def _sendgrid_batches(draw: st.DrawFn) -> list[Any]:
    """A signed Event Webhook batch: events of any kind, with ids, message ids and references of any text."""
    event = st.fixed_dictionaries(
        {
            "event": st.sampled_from(["processed", "delivered", "bounce", "dropped", "unsubscribe", "x"]),
            "timestamp": st.one_of(
                st.integers(min_value=0, max_value=2**33), st.integers(), st.text(max_size=12)
            ),
            "sg_event_id": _FORM_TEXT,
            "sg_message_id": _FORM_TEXT,
            "delivery_id": _FORM_TEXT,
            "reason": _FORM_TEXT,
        }
    )
    return draw(st.lists(st.one_of(event, _JSON), max_size=5))


@pytest.fixture(scope="module")
def sendgrid_signed_dispatch() -> Iterator[tuple[Any, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_key = base64.b64encode(der).decode()
    with _postgres_database() as url, migrated_service(
        "dispatch", make_settings(url, sendgrid_webhook_public_key=public_key)
    ) as runtime:
        yield SERVICES["dispatch"].create_app(runtime).test_client(), key


def test_signed_sendgrid_batches_with_arbitrary_events_are_answered_never_a_500(sendgrid_signed_dispatch):
    client, key = sendgrid_signed_dispatch

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 5)
    @given(batch=_sendgrid_batches())
    def answered(batch: list[Any]) -> None:
        body = json.dumps(batch).encode()
        timestamp = str(int(utcnow().timestamp()))
        signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "Content-Type": "application/json",
        }
        response = client.post("/webhooks/sendgrid/events", data=body, headers=headers)
        assert response.status_code in (204, 400, 422), response.get_data(as_text=True)

    answered()
