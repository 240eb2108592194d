from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from shared import signing
from shared.clock import utcnow
from tests.conftest import TEST_SECRET, signed_request


def test_signature_from_the_reference_implementation_verifies():
    body, headers = signed_request({"id": "e1"})
    assert signing.verify(TEST_SECRET, headers, body) == headers["webhook-id"]


def test_our_signature_verifies_with_the_reference_implementation():
    body = b'{"hello": "world"}'
    headers = signing.signed_headers(TEST_SECRET, body)
    assert Webhook(TEST_SECRET).verify(body, headers) == {"hello": "world"}


def test_tampered_body_is_refused():
    body, headers = signed_request({"id": "e1"})
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(TEST_SECRET, headers, body.replace(b"e1", b"e2"))


def test_other_secret_is_refused():
    body, headers = signed_request({"id": "e1"}, secret=signing.generate_secret())
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(TEST_SECRET, headers, body)


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_timestamp_outside_five_minutes_is_refused(age):
    body, headers = signed_request({"id": "e1"}, timestamp=utcnow() - age)
    with pytest.raises(signing.WebhookVerificationError, match="tolerance"):
        signing.verify(TEST_SECRET, headers, body)


def test_timestamp_within_five_minutes_is_accepted():
    body, headers = signed_request({"id": "e1"}, timestamp=utcnow() - timedelta(minutes=4))
    assert signing.verify(TEST_SECRET, headers, body)


def test_one_matching_signature_among_several_is_enough():
    body, headers = signed_request({"id": "e1"})
    headers["webhook-signature"] = "v1,bm90LXRoZS1zaWduYXR1cmU= " + headers["webhook-signature"]
    assert signing.verify(TEST_SECRET, headers, body)


def test_missing_headers_are_refused():
    with pytest.raises(signing.WebhookVerificationError, match="missing"):
        signing.verify(TEST_SECRET, {}, b"{}")
