"""Outbound webhooks on PostgreSQL and real HTTP: a local receiver (werkzeug on 127.0.0.1) verifies our
signature with the standardwebhooks package; an endpoint that always fails is disabled (the clock is moved,
nothing sleeps); no redirect is followed; a name that resolves to 127.0.0.1 is refused at registration and at
send time; the connection goes to the address that was checked, over TLS too; claimers skip each other's
rows."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.followup import service
from services.followup.app import create_app
from services.followup.providers import HttpSendError, RequestsWebhookSender
from services.followup.webhooks import WebhookTarget, check_url
from shared.clock import utcnow
from shared.events import new_event
from tests.clock import Clock
from tests.conftest import make_settings, migrated_service, staff_client
from tests.fakes import ROBOT

# --- A receiver ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps what it gets. ``/hook`` answers ``status``; ``/moved``
    redirects to ``/landing``; ``/slow`` answers after a second; ``/big`` answers a megabyte."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.server = make_server("127.0.0.1", 0, self._answer, threaded=True, ssl_context=ssl_context)
        self.port = self.server.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _answer(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(Received(request.path, dict(request.headers), request.get_data()))
        if request.path == "/moved":
            answer = Response("", 302, headers={"Location": self.url("/landing")})
        elif request.path == "/slow":
            time.sleep(1.0)
            answer = Response("late", 200)
        elif request.path == "/big":
            answer = Response(b"x" * 1_000_000, 200)
        else:
            answer = Response("ok" if self.status < 400 else "Internal Server Error", self.status)
        return answer(environ, start_response)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def followup(postgres_url):
    """Private addresses allowed, for the receiver on 127.0.0.1 (as in local development)."""
    with migrated_service("followup", make_settings(postgres_url, webhooks_allow_private=True)) as runtime:
        yield runtime


@pytest.fixture
def strict(postgres_url):
    """The production rule: public addresses only."""
    with migrated_service("followup", make_settings(postgres_url)) as runtime:
        yield runtime


def scored(response_id: str, score: int = 2, comment: str | None = "Nobody called back") -> dict:
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": 1,
            "score": score,
            "comment": comment,
            "locale": "tr",
            "touchpoint": "support_call",
            "channel": "email",
            "customer": {"customer_id": f"c-{response_id}", "external_id": "crm-7", "name": "Ayşe Demir"},
            "submitted_at": utcnow().isoformat(),
            "sentiment": None,
        },
    )


def deliveries_of(runtime, endpoint_id: str):
    return service.list_webhook_deliveries(runtime, ROBOT, endpoint_id)


# --- Signed, delivered, refused --------------------------------------------------------------------------


def test_the_standardwebhooks_package_verifies_what_the_receiver_gets(followup, receiver):
    client = staff_client(create_app(followup), followup.identity)
    created = client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url("/hook"), "event_types": ["followup.opened"]}
    ).get_json()
    service.act_on_scored_response(followup, scored("r-1"))

    assert service.send_due_webhooks(followup) == 1

    [request] = receiver.requests
    headers = {name.lower(): value for name, value in request.headers.items()}
    message = Webhook(created["secret"]).verify(request.body, headers)
    assert message["type"] == "followup.opened"
    assert message["data"]["task"]["customer"]["name"] == "Ayşe Demir"
    assert message["data"]["task"]["comment"] == "Nobody called back"
    [delivery] = client.get(f"/v1/webhook-endpoints/{created['id']}/deliveries").get_json()
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == ("delivered", 1, 200)
    assert delivery["response_body"] == "ok" and headers["webhook-id"] == delivery["message_id"]
    assert service.send_due_webhooks(followup) == 0


def test_an_endpoint_that_always_answers_500_is_disabled_after_its_last_attempt(
    followup, receiver, monkeypatch
):
    clock = Clock()
    monkeypatch.setattr(service, "utcnow", clock)
    started = clock.now
    receiver.status = 500
    client = staff_client(create_app(followup), followup.identity)
    endpoint_id = client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url("/hook"), "event_types": ["followup.opened"]}
    ).get_json()["id"]
    service.act_on_scored_response(followup, scored("r-1"))

    for _ in range(30):
        if not service.send_due_webhooks(followup):
            break
        [delivery] = deliveries_of(followup, endpoint_id)
        if delivery.next_attempt_at is not None:
            clock.now = delivery.next_attempt_at  # the next attempt's time, without waiting for it

    assert len(receiver.requests) == 12
    assert len({request.headers["Webhook-Id"] for request in receiver.requests}) == 1
    assert dt.timedelta(hours=19) < clock.now - started < dt.timedelta(hours=30)
    endpoint = client.get(f"/v1/webhook-endpoints/{endpoint_id}").get_json()
    assert endpoint["enabled"] is False and "failed 12 times over about a day" in endpoint["disabled_reason"]
    assert "HTTP 500" in endpoint["disabled_reason"] and endpoint["disabled_at"]
    [delivery] = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries").get_json()
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == ("failed", 12, 500)
    assert delivery["response_body"] == "Internal Server Error" and delivery["next_attempt_at"] is None
    # Disabled: a new task records nothing for it, and nothing more is sent.
    service.act_on_scored_response(followup, scored("r-2"))
    assert len(deliveries_of(followup, endpoint_id)) == 1
    assert service.send_due_webhooks(followup) == 0


def test_a_redirect_is_not_followed(followup, receiver):
    endpoint = service.create_webhook_endpoint(followup, ROBOT, receiver.url("/moved"), ["followup.opened"])
    service.act_on_scored_response(followup, scored("r-1"))

    service.send_due_webhooks(followup)

    assert [request.path for request in receiver.requests] == ["/moved"]
    [delivery] = deliveries_of(followup, endpoint.id)
    assert (delivery.status, delivery.response_status) == ("scheduled", 302)
    assert "redirects are not followed" in delivery.last_error


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(followup, receiver):
    followup.webhook_sender = RequestsWebhookSender(timeout=0.3)
    endpoint = service.create_webhook_endpoint(followup, ROBOT, receiver.url("/slow"), ["followup.opened"])
    service.act_on_scored_response(followup, scored("r-1"))

    service.send_due_webhooks(followup)

    [delivery] = deliveries_of(followup, endpoint.id)
    assert delivery.status == "scheduled" and "No answer from 127.0.0.1 within 0.3 s" in delivery.last_error


def test_only_the_start_of_a_long_answer_is_read_and_kept(followup, receiver):
    endpoint = service.create_webhook_endpoint(followup, ROBOT, receiver.url("/big"), ["followup.opened"])
    service.act_on_scored_response(followup, scored("r-1"))

    service.send_due_webhooks(followup)

    [delivery] = deliveries_of(followup, endpoint.id)
    assert delivery.status == "delivered" and delivery.response_body == "x" * 256


def test_an_alert_goes_to_the_alert_url_unsigned(postgres_url, receiver):
    settings = make_settings(
        postgres_url, webhooks_allow_private=True, followup_alert_webhook_url=receiver.url("/slack")
    )
    with migrated_service("followup", settings) as runtime:
        service.act_on_scored_response(runtime, scored("r-1", score=0, comment="Never again"))
        service.send_due_webhooks(runtime)

    [request] = receiver.requests
    assert request.path == "/slack" and "Webhook-Signature" not in request.headers
    assert "*Ayşe Demir* scored 0/10" in json.loads(request.body)["text"]


# --- Addresses -------------------------------------------------------------------------------------------


# The system's resolver reads the last three as 127.0.0.1 too (inet_aton's forms).
@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.0.0.1", "127.1"])
def test_a_name_resolving_to_127_0_0_1_is_refused_at_registration(strict, receiver, host):
    client = staff_client(create_app(strict), strict.identity)

    response = client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url("/hook", host=host), "event_types": ["followup.opened"]},
    )

    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert (
        f"{host} resolves to 127.0.0.1, which is a loopback address"
        in response.get_json()["errors"]["url"][0]
    )
    assert client.get("/v1/webhook-endpoints").get_json() == []


def test_a_name_that_resolves_to_127_0_0_1_after_registration_is_refused_at_send_time(
    strict, receiver, monkeypatch
):
    answers = {"crm.rebind.test": "93.184.216.34"}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    url = receiver.url("/hook", host="crm.rebind.test")
    endpoint = service.create_webhook_endpoint(strict, ROBOT, url, ["followup.opened"])  # public then
    answers["crm.rebind.test"] = "127.0.0.1"  # and the DNS answer changes (DNS rebinding)
    service.act_on_scored_response(strict, scored("r-1"))

    service.send_due_webhooks(strict)

    assert receiver.requests == []
    [delivery] = deliveries_of(strict, endpoint.id)
    assert delivery.status == "scheduled" and delivery.response_status is None
    assert "crm.rebind.test resolves to 127.0.0.1, which is a loopback address" in delivery.last_error


def test_the_request_goes_to_the_address_that_was_checked(followup, receiver):
    # crm.pinned.test resolves only through our resolver: had requests resolved the name again, the
    # connection would have failed instead of reaching the receiver.
    resolved = {"crm.pinned.test": "127.0.0.1"}
    followup.webhook_sender = RequestsWebhookSender(getaddrinfo=fake_getaddrinfo(resolved))
    url = receiver.url("/hook", host="crm.pinned.test")
    endpoint = service.create_webhook_endpoint(followup, ROBOT, url, ["followup.opened"])
    service.act_on_scored_response(followup, scored("r-1"))

    service.send_due_webhooks(followup)

    [request] = receiver.requests
    assert request.headers["Host"] == f"crm.pinned.test:{receiver.port}"
    assert deliveries_of(followup, endpoint.id)[0].status == "delivered"


def fake_getaddrinfo(names: dict[str, str]):
    def getaddrinfo(host: str, port: Any, *_args: Any, **_kwargs: Any) -> list[Any]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]

    return getaddrinfo


# --- TLS to a checked address ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    """A certificate authority of our own and a server certificate for crm.tls.test signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Closeloop test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm.tls.test")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("crm.tls.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file, context)


def test_tls_to_the_checked_address_verifies_the_certificate_of_the_host_name(certificates):
    names = {"crm.tls.test": "127.0.0.1", "impostor.tls.test": "127.0.0.1"}
    sender = RequestsWebhookSender(verify=str(certificates.ca), getaddrinfo=fake_getaddrinfo(names))
    with Receiver(certificates.server) as receiver:
        target = check_url(receiver.url("/hook", host="crm.tls.test", scheme="https"), allow_private=True)
        [address] = sender.resolve(target.host, target.port)

        answer = sender.post(target, address, b"{}", {"Content-Type": "application/json"})

        assert (
            answer.status == 200 and receiver.requests[0].headers["Host"] == target.host + f":{target.port}"
        )
        # The same server reached under another name: its certificate does not name it.
        impostor = replace(target, host="impostor.tls.test")
        with pytest.raises(HttpSendError, match="TLS with impostor.tls.test at 127.0.0.1 failed: .*match"):
            sender.post(impostor, address, b"{}", {})
        assert len(receiver.requests) == 1


def test_a_target_that_is_not_resolved_is_never_posted_to():
    sender = RequestsWebhookSender(getaddrinfo=fake_getaddrinfo({}))

    with pytest.raises(HttpSendError, match="does not resolve"):
        sender.resolve("crm.nowhere.test", 443)
    assert isinstance(check_url("https://crm.nowhere.test/in"), WebhookTarget)


# --- Claims ----------------------------------------------------------------------------------------------


def test_claimers_skip_the_deliveries_another_holds_and_those_of_disabled_endpoints(followup):
    crm = service.create_webhook_endpoint(followup, ROBOT, "http://127.0.0.1:9/in", ["followup.opened"])
    paused = service.create_webhook_endpoint(
        followup, ROBOT, "http://127.0.0.1:9/paused", ["followup.opened"]
    )
    for n in range(5):
        service.act_on_scored_response(followup, scored(f"r-{n}"))
    service.disable_webhook_endpoint(followup, ROBOT, paused.id)
    now = utcnow()

    first, second = followup.unit_of_work(), followup.unit_of_work()
    with first:
        taken_first = {delivery.id for delivery in first.webhook_deliveries.claim_due(now, 3)}
        with second:
            # Waiting for the first claimer's locks would be a failure too, not a hang.
            second.session.execute(text("SET LOCAL lock_timeout = '2s'"))
            taken_second = {delivery.id for delivery in second.webhook_deliveries.claim_due(now, 10)}

    assert len(taken_first) == 3 and len(taken_second) == 2 and taken_first.isdisjoint(taken_second)
    to_crm = {delivery.id for delivery in deliveries_of(followup, crm.id)}
    assert taken_first | taken_second == to_crm
    assert {delivery.status for delivery in deliveries_of(followup, crm.id)} == {"sending"}
    assert {delivery.status for delivery in deliveries_of(followup, paused.id)} == {"scheduled"}
