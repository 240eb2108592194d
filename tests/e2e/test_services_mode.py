"""Services mode: infra/Procfile under honcho starts every service as gunicorn apps, dramatiq workers and
clocks in separate processes on PostgreSQL and Redis or RabbitMQ; SendGrid and Twilio are the provider
simulator, since mocks do not cross into subprocesses. The loop is driven over real HTTP.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
import redis
import requests
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from shared.db import Database
from shared.identity.store import IdentityStore
from shared.principal import Role
from tests.conftest import TEST_SECRET, crm_event, signed_request, wait_for
from tests.e2e.processes import BIN, ROOT, RabbitmqServer, free_port

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("CLOSELOOP_TEST_REDIS_SERVICES", "redis://127.0.0.1:6379/14")
AUTH_TOKEN = "services-mode-twilio-token"
ACCOUNT_SID = "AC" + "5" * 32


def wait_for_http(check, timeout: float = 30.0, what: str = "the loop"):
    return wait_for(check, timeout, what, ignore=requests.RequestException)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request):
    """The machine's Redis (a database of its own), or a RabbitMQ node of the test's own."""
    if request.param == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        yield REDIS_URL
        redis.Redis.from_url(REDIS_URL).flushdb()
        return
    server = RabbitmqServer().start()
    yield server.url
    server.remove()


@pytest.fixture
def services(postgres_url, broker_url, tmp_path):
    ports = {
        name: free_port() for name in ("gateway", "survey", "dispatch", "sentiment", "followup", "simulator")
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env_file = tmp_path / "services.env"
    env_file.write_text(
        "\n".join(
            [
                f"DATABASE_URL={postgres_url}",
                f"BROKER_URL={broker_url}",
                *(
                    f"{name.upper()}_PORT={ports[name]}"
                    for name in ("gateway", "survey", "dispatch", "sentiment", "followup")
                ),
                f"SURVEY_PUBLIC_URL={urls['survey']}",
                f"DISPATCH_PUBLIC_URL={urls['dispatch']}",
                f"CLOSELOOP_WEBHOOK_SECRET={TEST_SECRET}",
                "CLOSELOOP_TRANSPORT=providers",
                "SENDGRID_API_KEY=SG.services-mode",
                f"SENDGRID_API_BASE_URL={urls['simulator']}",
                f"TWILIO_ACCOUNT_SID={ACCOUNT_SID}",
                f"TWILIO_AUTH_TOKEN={AUTH_TOKEN}",
                "TWILIO_FROM_NUMBER=+15005550006",
                f"TWILIO_API_BASE_URL={urls['simulator']}",
                # Tests run at any hour: no customer's quiet hours, no reminders.
                "QUIET_HOURS=off",
                "REMINDER_COUNT=0",
            ]
        )
    )
    environment = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "services.log").open("w")
    simulator = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "closeloop.provider_simulator",
            "--port",
            str(ports["simulator"]),
            "--twilio-auth-token",
            AUTH_TOKEN,
            "--status-callback-delay",
            "0.2",
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "-f", "infra/Procfile", "-e", str(env_file), "-d", str(ROOT), "start"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for name in ("survey", "dispatch", "sentiment", "followup"):
            for web in (name, "gateway"):  # each service on its own port, and all behind the gateway
                wait_for_http(
                    lambda name=name, web=web: requests.get(f"{urls[web]}/openapi/{name}.json", timeout=2).ok,
                    timeout=60,
                    what=f"{name}'s app on {web}",
                )
        yield urls
    finally:
        stop(honcho)
        stop(simulator)
        log.close()
        print((tmp_path / "services.log").read_text()[-5000:])


def simulated(urls, provider):
    messages = requests.get(f"{urls['simulator']}/_simulator/messages", timeout=5).json()
    return [message for message in messages if message["provider"] == provider]


def _api_key(postgres_url: str, role: Role) -> dict[str, str]:
    store = IdentityStore(Database(postgres_url))
    _, key = store.create_api_key(f"services-mode {role.value}", role, "tests")
    store.database.dispose()
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def staff(services, postgres_url):
    """An agent's API key, made the way an admin would (the web processes have migrated by now)."""
    return _api_key(postgres_url, Role.AGENT)


def _outbox_rows_naming(database: Database, marker: str) -> dict[str, int]:
    """Per service, the outbox rows whose event mentions ``marker``, but the erasure event itself (survey
    forgets it once every consumer has acknowledged it, within a minute)."""
    with database.transaction() as session:
        return {
            service: session.execute(
                text(
                    f"SELECT count(*) FROM {service}_outbox WHERE CAST(payload AS TEXT) LIKE :marker"
                    " AND event_type <> 'customer.erased'"
                ),
                {"marker": f"%{marker}%"},
            ).scalar_one()
            for service in ("survey", "dispatch", "sentiment", "followup")
        }


def test_the_loop_works_across_separate_processes(services, staff, postgres_url):
    urls = services
    body, headers = signed_request(crm_event("order-services-1", email="sam@example.com", name="Sam Lee"))
    first = requests.post(f"{urls['survey']}/v1/events", data=body, headers=headers, timeout=5)
    assert first.status_code == 202

    [email] = wait_for_http(lambda: simulated(urls, "sendgrid"), what="the SendGrid email")
    assert email["to"] == "sam@example.com"
    link = re.search(r'href="([^"]+\?score=2)"', email["html"]).group(1)
    assert link.startswith(urls["survey"] + "/s/")
    assert requests.get(link, timeout=5).ok
    answer = {"score": "2", "comment": "Rude staff and a broken product, I want a refund."}
    assert requests.post(link.split("?")[0], data=answer, timeout=5).ok

    [task] = wait_for_http(
        # Staff read through the gateway: one address for every service's pages and APIs.
        lambda: requests.get(f"{urls['gateway']}/v1/tasks", headers=staff, timeout=5).json(),
        what="the task",
    )
    assert task["score"] == 2 and task["comment"] == answer["comment"]
    assert task["sentiment"]["label"] == "negative"

    event = crm_event(
        "call-services-2", external_id="crm-sms", email=None, phone="+15555550199", preferred_channel="sms"
    )
    body, headers = signed_request(event)
    receipt = requests.post(f"{urls['survey']}/v1/events", data=body, headers=headers, timeout=5).json()
    [sms] = wait_for_http(lambda: simulated(urls, "twilio"), what="the Twilio SMS")
    # Decided by survey's clock right after the intake answered: the invitation the SMS came from.
    event_url = f"{urls['survey']}/v1/events/{receipt['event_id']}"
    invitation_id = requests.get(event_url, headers=staff, timeout=5).json()["invitation_id"]
    assert sms["to"] == "+15555550199" and "0 to 10" in sms["body"]

    def delivery_status():
        deliveries = requests.get(
            f"{urls['gateway']}/v1/deliveries",
            params={"invitation_id": invitation_id},
            headers=staff,
            timeout=5,
        ).json()
        return deliveries[0]["status"] if deliveries else None

    wait_for_http(lambda: delivery_status() == "delivered", what="the simulator's signed status callback")

    reply = {"MessageSid": "SM" + "7" * 32, "From": "+15555550199", "To": "+15005550006", "Body": "9 lovely"}
    inbound_url = f"{urls['dispatch']}/webhooks/twilio/sms"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(inbound_url, reply)
    assert requests.post(inbound_url, data=reply, headers={"X-Twilio-Signature": signature}, timeout=5).ok

    [referral] = wait_for_http(
        lambda: requests.get(f"{urls['gateway']}/v1/referral-requests", headers=staff, timeout=5).json(),
        what="the referral request",
    )
    assert referral["score"] == 9
    # States only move forward: answered after delivered.
    wait_for_http(lambda: delivery_status() == "answered", what="the answered delivery")

    # Erasing the detractor reaches every process: survey at once, the others through customer.erased;
    # then no outbox holds an event about them (survey's erasure event goes once every consumer has it).
    first_invitation = requests.get(first.json()["links"]["event"], headers=staff, timeout=5).json()
    erased = requests.post(
        f"{urls['gateway']}/v1/customers/crm-42/erase", headers=_api_key(postgres_url, Role.ADMIN), timeout=10
    )
    assert erased.status_code == 202, erased.text  # survey erased; the others follow
    customer_id = erased.json()["customer_id"]
    wait_for_http(
        lambda: requests.get(f"{urls['gateway']}/v1/tasks", headers=staff, timeout=5).json() == [],
        what="followup's erasure",
    )
    deliveries = f"{urls['gateway']}/v1/deliveries?invitation_id={first_invitation['invitation_id']}"
    wait_for_http(
        lambda: requests.get(deliveries, headers=staff, timeout=5).json() == [], what="dispatch's erasure"
    )
    nothing_left = {"survey": 0, "dispatch": 0, "sentiment": 0, "followup": 0}
    database = Database(postgres_url)  # one engine for every poll below
    try:
        for marker in (customer_id, "sam@example.com"):
            wait_for(
                lambda marker=marker: _outbox_rows_naming(database, marker) == nothing_left,
                what=f"every outbox without {marker}",
            )
    finally:
        database.dispose()
