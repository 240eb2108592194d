"""The embedded system sending through the provider simulator, which misbehaves as each test asks: answers
after the client's timeout, 500s and connection resets after taking the message, 429s with Retry-After. And
the customer's night, and reminders, with dispatch's clock moved forward instead of waiting.

Nothing is sent twice: a send whose outcome is unknown is looked up at Twilio before any retry, and an email
(SendGrid has no look-up) is shown as unknown instead of being sent again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from closeloop.provider_simulator import SimulatorServer, create_simulator_app
from closeloop.system import build_system
from services.dispatch import service as dispatch_service
from services.dispatch.models import Delivery
from services.dispatch.quiet_hours import SendingWindow, next_sending_time
from shared.clock import utcnow
from tests.conftest import crm_event, make_settings, signed_request, wait_for

pytestmark = pytest.mark.e2e

AUTH_TOKEN = "simulator-token"
ACCOUNT_SID = "AC" + "7" * 32
SENDER = "+15005550006"


class ShiftedClock:
    """Dispatch's now, moved forward by hand: backoffs, quiet hours and reminder delays pass at once."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.shift

    def advance(self, **delta: float) -> None:
        self.shift += timedelta(**delta)


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(create_simulator_app(twilio_auth_token=AUTH_TOKEN)) as server:
        yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ShiftedClock:
    clock = ShiftedClock()
    monkeypatch.setattr(dispatch_service, "utcnow", clock)
    return clock


def start_system(sqlite_url: str, simulator: SimulatorServer, **settings):
    values = {
        "transport": "providers",
        "sendgrid_api_key": "SG.simulated",
        "sendgrid_api_base_url": simulator.base_url,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": SENDER,
        "twilio_api_base_url": simulator.base_url,
        # The simulator's slow answers come after 1 s: the client gives up first, as at 10 s against 12 s.
        "provider_timeout_seconds": 0.4,
    }
    values.update(settings)
    system = build_system(make_settings(sqlite_url, **values))
    system.start()
    return system


@pytest.fixture
def system(sqlite_url, simulator, clock):
    running = start_system(sqlite_url, simulator)
    yield running
    running.stop()


def add_fault(simulator: SimulatorServer, **fault) -> None:
    requests.post(f"{simulator.base_url}/_simulator/faults", json=fault, timeout=5).raise_for_status()


def recorded(simulator: SimulatorServer) -> list[dict]:
    return requests.get(f"{simulator.base_url}/_simulator/messages", timeout=5).json()


def post_event(system, event) -> None:
    body, headers = signed_request(event)
    answer = system.apps["survey"].test_client().post("/v1/events", data=body, headers=headers)
    assert answer.status_code == 202, answer.get_data(as_text=True)


def deliveries(system, kind: str | None = None) -> list[Delivery]:
    with system.runtimes["dispatch"].database.transaction() as session:
        query = select(Delivery).order_by(Delivery.created_at)
        if kind:
            query = query.where(Delivery.kind == kind)
        return list(session.scalars(query).all())


def customers(count: int, channel: str, **extra) -> list[dict]:
    events = []
    for number in range(count):
        contact = (
            {"email": f"customer{number}@example.com", "phone": None}
            if channel == "email"
            else {"email": None, "phone": f"+1555010{number:04d}"}
        )
        events.append(
            crm_event(
                f"order-{channel}-{number}",
                external_id=f"crm-{channel}-{number}",
                preferred_channel=channel,
                **contact,
                **extra,
            )
        )
    return events


def settled(system, count: int, states: set[str]) -> list[Delivery]:
    rows = [row for row in deliveries(system, "invitation")]
    return rows if len(rows) == count and all(row.status in states for row in rows) else []


def test_a_provider_answering_after_the_timeout_sends_no_invitation_twice(system, simulator, clock):
    # Twenty invitations, each answered after the client gave up (as in the measurement: 20 of 20 were sent
    # twice). The SMS are looked up at Twilio and found; the emails cannot be looked up and are shown unknown.
    add_fault(simulator, kind="slow", delay=1.0, count=20)
    for event in customers(10, "sms") + customers(10, "email"):
        post_event(system, event)

    wait_for(lambda: settled(system, 20, {"scheduled", "unknown"}), timeout=60, what="every call timed out")
    clock.advance(minutes=1)  # past the first retry's backoff
    rows = wait_for(lambda: settled(system, 20, {"sent", "unknown"}), timeout=60, what="the look-ups")

    messages = recorded(simulator)
    assert len(messages) == 20
    assert len({message["to"] for message in messages}) == 20  # nobody got a second one
    by_channel = {(row.channel, row.status) for row in rows}
    assert by_channel == {("sms", "sent"), ("email", "unknown")}
    sms_ids = {row.provider_message_id for row in rows if row.channel == "sms"}
    assert sms_ids == {message["id"] for message in messages if message["provider"] == "twilio"}
    email = next(row for row in rows if row.channel == "email")
    assert "not sent again" in email.failure_reason


@pytest.mark.parametrize("kind", ["500", "reset"])
def test_a_provider_failing_after_taking_the_message_is_asked_before_any_retry(
    system, simulator, clock, kind
):
    add_fault(simulator, kind=kind, count=4)
    for event in customers(2, "sms") + customers(2, "email"):
        post_event(system, event)

    wait_for(lambda: settled(system, 4, {"scheduled", "unknown"}), timeout=60, what="the failed calls")
    clock.advance(minutes=1)
    rows = wait_for(lambda: settled(system, 4, {"sent", "unknown"}), timeout=60, what="the look-ups")

    assert len(recorded(simulator)) == 4
    assert {(row.channel, row.status) for row in rows} == {("sms", "sent"), ("email", "unknown")}


def test_a_rate_limited_send_is_retried_after_its_retry_after_and_sent_once(system, simulator, clock):
    add_fault(simulator, kind="429", count=3, retry_after=1)
    for event in customers(3, "sms"):
        post_event(system, event)

    waiting = wait_for(lambda: settled(system, 3, {"scheduled"}), timeout=60, what="the refused calls")
    assert all(row.reconcile_since is None for row in waiting)  # never processed: nothing to look up
    clock.advance(minutes=1)
    rows = wait_for(lambda: settled(system, 3, {"sent"}), timeout=60, what="the retries")

    assert len(recorded(simulator)) == 3
    assert [row.attempts for row in rows] == [2, 2, 2]


def a_zone_at_night(now: datetime) -> str:
    """A time zone where it is now outside 08:00-21:00, whatever the hour this test runs at."""
    for name in (
        "Pacific/Kiritimati",
        "Asia/Tokyo",
        "Europe/Istanbul",
        "America/New_York",
        "Pacific/Honolulu",
    ):
        hour = now.astimezone(ZoneInfo(name)).hour
        if hour >= 22 or hour < 7:
            return name
    raise AssertionError("one of those zones is always at night")


def test_an_invitation_waits_for_the_customers_morning_then_goes_once(sqlite_url, simulator, clock):
    window = {"email": "08:00-21:00", "sms": "08:00-21:00", "whatsapp": "08:00-21:00"}
    system = start_system(sqlite_url, simulator, quiet_hours=window)
    try:
        zone = a_zone_at_night(utcnow())
        post_event(
            system, crm_event("order-night", phone="+15550109999", preferred_channel="sms", timezone=zone)
        )

        [waiting] = wait_for(lambda: settled(system, 1, {"quiet_hours"}), what="the delivery to wait")
        opening = next_sending_time(utcnow(), ZoneInfo(zone), SendingWindow.parse("08:00-21:00"))
        assert waiting.next_attempt_at == opening and waiting.timezone == zone
        assert recorded(simulator) == []

        clock.advance(seconds=(opening - utcnow()).total_seconds() + 5)
        wait_for(lambda: settled(system, 1, {"sent"}), what="the morning's send")
        [message] = recorded(simulator)
        assert message["to"] == "+15550109999"
    finally:
        system.stop()


def test_a_reminder_follows_and_an_answer_cancels_the_next_one(sqlite_url, simulator, clock):
    system = start_system(sqlite_url, simulator, reminder_count=2, reminder_delay_hours=48.0)
    try:
        phone = "+15550108888"
        post_event(system, crm_event("order-remind", email=None, phone=phone, preferred_channel="sms"))
        wait_for(lambda: settled(system, 1, {"sent"}), what="the invitation")

        clock.advance(hours=48, minutes=1)
        wait_for(lambda: len(recorded(simulator)) == 2, what="the first reminder")
        invitation, reminder = recorded(simulator)
        assert reminder["body"] == f"Reminder: {invitation['body']}"

        # The customer answers the reminder by SMS, through the same inbound webhook.
        form = {"MessageSid": "SM" + "e" * 32, "From": phone, "To": SENDER, "Body": "9"}
        url = "http://testserver/webhooks/twilio/sms"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        answer = (
            system.apps["dispatch"]
            .test_client()
            .post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
        )
        assert answer.status_code == 200

        second = wait_for(
            lambda: [row for row in deliveries(system, "reminder") if row.status == "cancelled"],
            what="the answer to cancel the second reminder",
        )
        assert second[0].source_id.endswith(":reminder-2")
        clock.advance(hours=48, minutes=1)
        assert dispatch_service.send_due_deliveries(system.runtimes["dispatch"]) == 0
        assert len(recorded(simulator)) == 2
    finally:
        system.stop()
