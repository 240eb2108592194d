"""Outbound webhooks and alerts on the in-memory unit of work: what is recorded for whom, how it is sent,
retried, given up and sent again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.followup import service
from services.followup.domain import ResolutionCode, StaffMember, TaskStatus
from services.followup.models import WebhookDelivery
from services.followup.providers import HttpAnswer, HttpSendError
from services.followup.webhooks import DeliveryKind, DeliveryStatus
from shared.http import ConflictError, ForbiddenError, NotFoundError
from shared.signing import verify
from tests.fakes import ROBOT

from .fakes import CRM_ADDRESS, CRM_HOST, FakeWebhookSender, fake_runtime
from .support import ANA, MAYA, NEGATIVE, START, scored, the_task

CRM_URL = f"https://{CRM_HOST}/closeloop"


@pytest.fixture
def sender() -> FakeWebhookSender:
    return FakeWebhookSender({CRM_HOST: [CRM_ADDRESS], "other.example.com": ["93.184.216.35"]})


@pytest.fixture
def runtime(uow, sender):
    return fake_runtime(uow, sender)


def endpoint(runtime, *event_types: str, url: str = CRM_URL):
    return service.create_webhook_endpoint(runtime, ROBOT, url, event_types or ("followup.opened",))


def deliveries(uow, endpoint_id: str | None = None) -> list[WebhookDelivery]:
    """Oldest first."""
    rows = uow.webhook_deliveries.rows.values()
    return [row for row in rows if endpoint_id is None or row.endpoint_id == endpoint_id]


def event_types(uow, endpoint_id: str | None = None) -> list[str]:
    return [row.event_type for row in deliveries(uow, endpoint_id)]


def sent_bodies(sender) -> list[dict]:
    return [json.loads(request.body) for request in sender.sent]


def attempt_all_due(runtime, uow, clock) -> int:
    """Move the clock to the earliest due delivery and send what is due then."""
    due = [row.next_attempt_at for row in deliveries(uow) if row.next_attempt_at is not None]
    if due:
        clock.now = max(clock.now, min(due))
    return service.send_due_webhooks(runtime)


# --- Registering endpoints -------------------------------------------------------------------------------


def test_an_admin_registers_an_endpoint_with_a_new_secret(runtime, uow, clock):
    created = service.create_webhook_endpoint(
        runtime, ROBOT, f"  {CRM_URL}  ", ["followup.resolved", "followup.opened"], "The CRM"
    )

    assert created.secret.startswith("whsec_") and len(created.secret) > 40
    assert (created.url, created.description, created.enabled) == (CRM_URL, "The CRM", True)
    assert created.event_types == ["followup.opened", "followup.resolved"]
    assert uow.webhook_endpoints.get(created.id) is created
    assert endpoint(runtime).secret != created.secret


def test_only_an_admin_manages_webhooks(runtime, uow, clock):
    with pytest.raises(ForbiddenError):
        service.create_webhook_endpoint(runtime, MAYA, CRM_URL, ["followup.opened"])
    created = endpoint(runtime)
    for use_case in (
        service.list_webhook_endpoints,
        service.list_alert_deliveries,
    ):
        with pytest.raises(ForbiddenError):
            use_case(runtime, ANA)
    with pytest.raises(ForbiddenError):
        service.disable_webhook_endpoint(runtime, MAYA, created.id)


@pytest.mark.parametrize(
    ("url", "addresses", "words"),
    [
        ("http://localhost:8000/in", {"localhost": ["127.0.0.1", "::1"]}, "localhost resolves to 127.0.0.1"),
        ("https://crm.example.com/in", {CRM_HOST: [CRM_ADDRESS, "10.0.0.7"]}, "10.0.0.7, which is a private"),
        ("https://metadata.example/in", {"metadata.example": ["169.254.169.254"]}, "cloud metadata"),
        ("https://[::1]/in", {}, "::1 is a loopback address"),
        ("https://nowhere.example/in", {}, "does not resolve"),
        ("gopher://crm.example.com/in", {}, "https://"),
    ],
)
def test_a_refused_url_is_a_422_naming_the_url(uow, clock, url, addresses, words):
    runtime = fake_runtime(uow, FakeWebhookSender(addresses))

    with pytest.raises(service.InvalidWebhookInput) as refused:
        service.create_webhook_endpoint(runtime, ROBOT, url, ["followup.opened"])

    assert refused.value.status == 422 and words in refused.value.errors["url"][0]
    assert uow.webhook_endpoints.rows == {}


def test_private_addresses_are_accepted_when_the_settings_allow_them(uow, clock):
    runtime = fake_runtime(uow, FakeWebhookSender({"localhost": ["127.0.0.1"]}), webhooks_allow_private=True)

    created = service.create_webhook_endpoint(runtime, ROBOT, "http://localhost:8000/in", ["followup.opened"])

    assert created.enabled


def test_an_unknown_event_type_is_a_422_naming_the_event_types(runtime, clock):
    with pytest.raises(service.InvalidWebhookInput) as refused:
        service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["followup.opened", "task.exploded"])

    assert "task.exploded" in refused.value.errors["event_types"][0]


# --- Recording -------------------------------------------------------------------------------------------


def test_a_new_task_is_recorded_once_for_each_endpoint_subscribed_to_it(runtime, uow, clock):
    crm = endpoint(runtime, "followup.opened", "response.scored")
    other = endpoint(runtime, "followup.opened", url="https://other.example.com/in")
    scores_only = endpoint(runtime, "response.scored")

    service.act_on_scored_response(runtime, scored(2, comment="Nobody called"))

    assert sorted(event_types(uow, crm.id)) == ["followup.opened", "response.scored"]
    assert event_types(uow, other.id) == ["followup.opened"]
    assert event_types(uow, scores_only.id) == ["response.scored"]
    opened = next(row for row in deliveries(uow, other.id))
    assert (opened.status, opened.next_attempt_at, opened.attempts) == ("scheduled", START, 0)
    assert opened.url == "https://other.example.com/in" and opened.message_id.startswith("msg_")
    task = opened.payload["data"]["task"]
    assert (task["id"], task["score"], task["comment"], task["status"]) == (
        the_task(uow).id,
        2,
        "Nobody called",
        "open",
    )
    assert task["customer"] == {"customer_id": "c-1", "external_id": "crm-1", "name": "Jane Doe"}
    assert "email" not in json.dumps(opened.payload)  # the CRM knows its customers by id


def test_a_disabled_endpoint_gets_no_new_deliveries(runtime, uow, clock):
    crm = endpoint(runtime, "followup.opened")
    service.disable_webhook_endpoint(runtime, ROBOT, crm.id)

    service.act_on_scored_response(runtime, scored(2))

    assert deliveries(uow) == []
    service.enable_webhook_endpoint(runtime, ROBOT, crm.id)
    service.act_on_scored_response(runtime, scored(3, response_id="r-2"))
    assert event_types(uow, crm.id) == ["followup.opened"]


def test_the_queue_records_updates_and_the_resolution(runtime, uow, clock):
    crm = endpoint(runtime, "followup.updated", "followup.resolved")
    service.act_on_scored_response(runtime, scored(2))
    task_id = the_task(uow).id

    service.claim_task(runtime, ANA, task_id)
    service.add_note(runtime, ANA, task_id, "Called, left a voicemail")
    service.assign_task(runtime, MAYA, task_id, StaffMember(MAYA.id, MAYA.name))
    service.change_status(
        runtime, MAYA, task_id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED, "Refund"
    )
    service.change_status(runtime, MAYA, task_id, TaskStatus.CLOSED)

    rows = deliveries(uow, crm.id)
    assert [row.event_type for row in rows] == [
        "followup.updated",
        "followup.updated",
        "followup.updated",
        "followup.resolved",
        "followup.updated",
    ]
    changes = [row.payload["data"]["change"] for row in rows]
    assert [change["kind"] for change in changes] == [
        "claimed",
        "note_added",
        "assigned",
        "status_changed",
        "status_changed",
    ]
    assert changes[1]["note"] == "Called, left a voicemail" and changes[0]["actor"]["id"] == ANA.id
    assert changes[2]["assignee"] == {"id": MAYA.id, "name": MAYA.name}
    resolved = rows[3].payload["data"]["task"]
    assert (resolved["status"], resolved["resolution_code"], resolved["resolution_note"]) == (
        "resolved",
        "contacted_resolved",
        "Refund",
    )


def test_a_raised_score_that_dismisses_the_task_is_an_update(runtime, uow, clock):
    crm = endpoint(runtime, "followup.updated")
    service.act_on_scored_response(runtime, scored(2))

    service.act_on_scored_response(runtime, scored(9, revision=2))

    [row] = deliveries(uow, crm.id)
    assert row.payload["data"]["task"]["status"] == "dismissed"


def test_a_promoter_is_recorded_as_a_referral_request_and_its_conversion(runtime, uow, clock):
    crm = endpoint(runtime, "referral.requested", "referral.converted", "response.scored")

    service.act_on_scored_response(runtime, scored(10, comment="Great"))
    request = uow.referrals.by_response["r-1"]
    service.convert_referral(runtime, request.id, {"referred_customer": {"external_id": "crm-77"}})

    requested, converted = [row for row in deliveries(uow, crm.id) if row.event_type.startswith("referral")]
    assert requested.payload["data"]["referral_request"]["id"] == request.id
    assert requested.payload["data"]["referral_request"]["status"] == "requested"
    assert converted.event_type == "referral.converted" and request.status == "converted"
    assert converted.payload["data"]["conversion"] == {"referred_customer": {"external_id": "crm-77"}}
    scored_row = next(row for row in deliveries(uow, crm.id) if row.event_type == "response.scored")
    assert scored_row.payload["data"]["response"]["sentiment"] is None


def test_converting_an_unknown_referral_request_is_not_found(runtime, clock):
    with pytest.raises(NotFoundError):
        service.convert_referral(runtime, "nope")


def test_every_scored_answer_is_recorded_even_one_that_changes_nothing(runtime, uow, clock):
    crm = endpoint(runtime, "response.scored")
    service.act_on_scored_response(runtime, scored(2, revision=2, sentiment=NEGATIVE, comment="Rude"))

    service.act_on_scored_response(runtime, scored(2, revision=1))  # an older revision, arriving late

    rows = deliveries(uow, crm.id)
    assert [row.payload["data"]["response"]["revision"] for row in rows] == [2, 1]
    assert rows[0].payload["data"]["response"]["sentiment"]["label"] == "negative"


def test_every_answer_is_recorded_as_received_when_the_customer_answered(runtime, uow, clock):
    crm = endpoint(runtime, "response.received")
    event = scored(6, submitted_at=(START - timedelta(minutes=3)).isoformat())
    clock.advance(minutes=1)

    service.act_on_scored_response(runtime, event)
    service.act_on_scored_response(runtime, event)  # the broker delivered it twice

    [row] = deliveries(uow, crm.id)
    assert row.payload["type"] == "response.received"
    assert row.payload["timestamp"] == "2026-11-25T09:57:00+00:00" and row.created_at == clock.now
    answer = row.payload["data"]["response"]
    assert (answer["id"], answer["score"], answer["channel"]) == ("r-1", 6, "sms")
    assert "sentiment" not in answer


# --- Delivering ------------------------------------------------------------------------------------------


def test_a_due_delivery_is_posted_signed_to_the_checked_address(runtime, uow, sender, clock):
    crm = endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))

    assert service.send_due_webhooks(runtime) == 1

    [request] = sender.sent
    assert (request.target.host, request.address) == (CRM_HOST, CRM_ADDRESS)
    assert verify(crm.secret, request.headers, request.body, now=clock.now) == request.headers["webhook-id"]
    [row] = deliveries(uow)
    assert request.headers["webhook-id"] == row.message_id
    assert json.loads(request.body) == row.payload
    assert (row.status, row.attempts, row.response_status, row.delivered_at) == ("delivered", 1, 204, START)
    assert row.next_attempt_at is None and row.last_error is None
    assert service.send_due_webhooks(runtime) == 0


def test_a_failed_attempt_is_retried_with_backoff_and_the_same_webhook_id(runtime, uow, sender, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(503, b"Service Unavailable"), HttpSendError("No answer within 5 s.")]

    service.send_due_webhooks(runtime)
    [row] = deliveries(uow)
    assert (row.status, row.attempts, row.response_status) == ("scheduled", 1, 503)
    assert (row.response_body, row.last_error) == ("Service Unavailable", "The receiver answered HTTP 503.")
    assert START + timedelta(seconds=48) <= row.next_attempt_at <= START + timedelta(seconds=72)
    assert service.send_due_webhooks(runtime) == 0  # not due yet

    attempt_all_due(runtime, uow, clock)
    assert (row.status, row.attempts, row.response_status, row.last_error) == (
        "scheduled",
        2,
        None,
        "No answer within 5 s.",
    )
    attempt_all_due(runtime, uow, clock)
    assert row.status == "delivered" and row.attempts == 3
    ids = {request.headers["webhook-id"] for request in sender.sent}
    timestamps = [request.headers["webhook-timestamp"] for request in sender.sent]
    assert ids == {row.message_id} and len(set(timestamps)) == 3  # one message, signed anew each time


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(runtime, uow, sender, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(302, b"", "http://169.254.169.254/latest/meta-data")]

    service.send_due_webhooks(runtime)

    [row] = deliveries(uow)
    assert len(sender.sent) == 1 and row.status == "scheduled" and row.response_status == 302
    assert "redirects are not followed" in row.last_error


def test_the_address_is_checked_again_before_each_attempt(runtime, uow, sender, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    sender.addresses[CRM_HOST] = ["127.0.0.1"]  # the name now points inside

    service.send_due_webhooks(runtime)

    [row] = deliveries(uow)
    assert sender.sent == []
    assert (
        row.status == "scheduled" and "resolves to 127.0.0.1, which is a loopback address" in row.last_error
    )


def test_an_endpoint_that_keeps_failing_is_disabled_after_about_a_day(runtime, uow, sender, clock):
    crm = endpoint(runtime, "followup.opened", "followup.updated")
    service.act_on_scored_response(runtime, scored(2))
    sender.default = HttpAnswer(500, b"Internal Server Error")

    while attempt_all_due(runtime, uow, clock):
        pass

    [row] = deliveries(uow)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 12, None)
    assert timedelta(hours=19) < clock.now - START < timedelta(hours=30)
    assert len(sender.sent) == 12 and {r.headers["webhook-id"] for r in sender.sent} == {row.message_id}
    assert crm.enabled is False and crm.disabled_at == clock.now
    assert "failed 12 times over about a day" in crm.disabled_reason
    assert "HTTP 500" in crm.disabled_reason
    # Nothing new for it until an admin enables it again.
    service.claim_task(runtime, ANA, the_task(uow).id)
    assert len(deliveries(uow)) == 1


def test_deliveries_to_a_disabled_endpoint_wait_and_go_out_once_it_is_enabled(runtime, uow, sender, clock):
    crm = endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    service.disable_webhook_endpoint(runtime, ROBOT, crm.id)

    assert service.send_due_webhooks(runtime) == 0
    assert crm.disabled_reason == f"Disabled by {ROBOT.name}." and crm.disabled_at == START

    service.enable_webhook_endpoint(runtime, ROBOT, crm.id)
    assert (crm.disabled_reason, crm.disabled_at) == (None, None)
    assert service.send_due_webhooks(runtime) == 1 and deliveries(uow)[0].status == "delivered"


def test_an_attempt_interrupted_by_a_dead_worker_is_put_back(runtime, uow, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    [row] = uow.webhook_deliveries.claim_due(START, 10)  # a worker claimed it, then died

    assert service.recover_stalled_webhooks(runtime, START + timedelta(minutes=16)) == 1
    assert row.status == "scheduled" and "interrupted" in row.last_error


def test_a_long_answer_is_kept_only_in_part(runtime, uow, sender, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(400, b"x" * 256)]  # the sender reads no more than this

    service.send_due_webhooks(runtime)

    assert deliveries(uow)[0].response_body == "x" * 256


# --- Sending again ---------------------------------------------------------------------------------------


def test_sending_again_copies_a_finished_delivery_with_the_same_webhook_id(runtime, uow, sender, clock):
    crm = endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    service.send_due_webhooks(runtime)
    [first] = deliveries(uow)

    again = service.resend_webhook_delivery(runtime, ROBOT, first.id)
    service.send_due_webhooks(runtime)

    assert again.id != first.id and again.resent_from == first.id
    assert (again.message_id, again.payload, again.endpoint_id) == (first.message_id, first.payload, crm.id)
    assert again.status == "delivered" and first.status == "delivered"
    assert [request.headers["webhook-id"] for request in sender.sent] == [first.message_id] * 2
    assert [row.id for row in service.list_webhook_deliveries(runtime, ROBOT, crm.id)] == [again.id, first.id]


def test_sending_again_a_delivery_waiting_for_a_retry_makes_it_due_now(runtime, uow, sender, clock):
    endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    sender.answers = [HttpAnswer(500, b"")]
    service.send_due_webhooks(runtime)
    [row] = deliveries(uow)
    clock.advance(seconds=10)

    assert service.resend_webhook_delivery(runtime, ROBOT, row.id) is row
    assert row.next_attempt_at == clock.now and len(deliveries(uow)) == 1
    assert service.send_due_webhooks(runtime) == 1 and row.status == "delivered"


def test_sending_again_is_refused_while_sending_or_to_a_disabled_endpoint(runtime, uow, clock):
    crm = endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))
    [row] = uow.webhook_deliveries.claim_due(START, 10)

    with pytest.raises(ConflictError, match="being sent"):
        service.resend_webhook_delivery(runtime, ROBOT, row.id)
    row.status = DeliveryStatus.FAILED
    service.disable_webhook_endpoint(runtime, ROBOT, crm.id)
    with pytest.raises(ConflictError, match="disabled"):
        service.resend_webhook_delivery(runtime, ROBOT, row.id)
    with pytest.raises(NotFoundError):
        service.resend_webhook_delivery(runtime, ROBOT, "nope")


def test_deleting_an_endpoint_deletes_its_log(runtime, uow, clock):
    crm = endpoint(runtime, "followup.opened")
    service.act_on_scored_response(runtime, scored(2))

    service.delete_webhook_endpoint(runtime, ROBOT, crm.id)

    assert uow.webhook_endpoints.rows == {} and deliveries(uow) == []
    with pytest.raises(NotFoundError):
        service.list_webhook_deliveries(runtime, ROBOT, crm.id)


# --- Alerts ----------------------------------------------------------------------------------------------

SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXX"


@pytest.fixture
def alerting(uow, sender):
    sender.addresses["hooks.slack.example"] = ["93.184.216.40"]
    return fake_runtime(uow, sender, followup_alert_webhook_url=SLACK_URL)


def test_a_new_high_priority_task_is_announced_to_the_alert_url(alerting, uow, sender, clock):
    service.act_on_scored_response(alerting, scored(1, comment="Worst <service> & ever"))

    [alert] = uow.webhook_deliveries.of_kind(DeliveryKind.ALERT)
    text = alert.payload["text"]
    assert (alert.url, alert.endpoint_id, alert.event_type) == (SLACK_URL, None, "followup.opened")
    assert "*Jane Doe* scored 1/10" in text and "Worst &lt;service&gt; &amp; ever" in text
    assert f"<http://testserver/tasks/{the_task(uow).id}|Open the task>" in text

    service.send_due_webhooks(alerting)

    [request] = sender.sent
    assert json.loads(request.body) == {"text": text} and "webhook-signature" not in request.headers
    assert alert.status == "delivered"
    assert service.list_alert_deliveries(alerting, ROBOT) == [alert]


def test_a_normal_priority_task_is_not_announced_until_it_becomes_high(alerting, uow, clock):
    service.act_on_scored_response(alerting, scored(6, comment=None))
    assert uow.webhook_deliveries.of_kind(DeliveryKind.ALERT) == []

    service.act_on_scored_response(alerting, scored(6, revision=2, comment="Rude", sentiment=NEGATIVE))
    service.act_on_scored_response(alerting, scored(5, revision=3, comment="Still rude", sentiment=NEGATIVE))

    [alert] = uow.webhook_deliveries.of_kind(DeliveryKind.ALERT)
    assert alert.event_type == "followup.updated" and "Rude" in alert.payload["text"]


def test_no_alert_without_an_alert_url(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(0))

    assert uow.webhook_deliveries.of_kind(DeliveryKind.ALERT) == []


def test_an_alert_that_keeps_failing_fails_without_disabling_any_endpoint(alerting, uow, sender, clock):
    crm = endpoint(alerting, "followup.opened")
    sender.by_host["hooks.slack.example"] = HttpAnswer(404, b"no_service")  # the CRM's go through
    service.act_on_scored_response(alerting, scored(1))

    while attempt_all_due(alerting, uow, clock):
        pass

    [alert] = uow.webhook_deliveries.of_kind(DeliveryKind.ALERT)
    assert (alert.status, alert.attempts, alert.response_body) == ("failed", 12, "no_service")
    assert crm.enabled is True
