"""The survey use cases on the in-memory unit of work: what each stores, decides and emits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.survey import service
from services.survey.models import CrmEvent, Customer, Invitation
from services.survey.runtime import SurveyRuntime
from services.survey.schemas import CrmEventSchema
from shared.clock import utcnow
from shared.events import new_event
from shared.http import NotFoundError
from shared.nps import NpsSummary
from tests.clock import Clock
from tests.conftest import crm_event
from tests.survey_intake import DecidedEvent, accept_and_decide

from .fakes import FakeSurveyUnitOfWork, fake_runtime


@pytest.fixture
def uow() -> FakeSurveyUnitOfWork:
    return FakeSurveyUnitOfWork()


@pytest.fixture
def survey(uow: FakeSurveyUnitOfWork) -> SurveyRuntime:
    return fake_runtime(uow)


def accept(
    survey: SurveyRuntime,
    event_id: str | None = None,
    event_type: str = "purchase.completed",
    occurred_at: datetime | None = None,
    source: str = "default",
    **customer: Any,
) -> DecidedEvent:
    event = crm_event(event_id, **customer)
    event["type"] = event_type
    if occurred_at is not None:
        event["occurred_at"] = occurred_at.isoformat()
    return accept_and_decide(survey, CrmEventSchema().load(event), source)


def invite(survey: SurveyRuntime, uow: FakeSurveyUnitOfWork, **options: Any) -> tuple[str, str]:
    """Invite a customer; returns the invitation id and the token of the link the customer gets."""
    outcome = accept(survey, **options)
    assert outcome.decision == "invited"
    [requested] = [
        data for data in uow.emitted("invitation.requested") if data["invitation_id"] == outcome.invitation_id
    ]
    return outcome.invitation_id, requested["message"]["answer_url"].rsplit("/", 1)[1]


def answers(uow: FakeSurveyUnitOfWork) -> list[tuple[int, int, str | None, str]]:
    """(revision, score, comment, channel) of every response.submitted, oldest first."""
    return [
        (data["revision"], data["score"], data["comment"], data["channel"])
        for data in uow.emitted("response.submitted")
    ]


# --- accept_crm_event ----------------------------------------------------------------------------------


def test_purchase_invites_the_customer_and_requests_the_invitation(survey, uow):
    outcome = accept(survey, "order-1", attributes={"segment": "retail"})

    assert (outcome.duplicate, outcome.decision, outcome.reason) == (False, "invited", "purchase survey")
    [requested] = uow.emitted("invitation.requested")
    invitation = uow.invitations.get(outcome.invitation_id)
    customer = uow.customers.get(invitation.customer_id)
    assert requested["invitation_id"] == invitation.id
    assert (requested["touchpoint"], requested["locale"], requested["preferred_channel"]) == (
        "purchase",
        "en",
        "email",
    )
    assert requested["contact"] == {
        "customer_id": customer.id,
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": None,
        "timezone": None,
    }
    assert requested["message"]["greeting"] == "Hello Jane,"
    assert requested["message"]["question"].startswith("Thank you for your purchase!")
    assert requested["message"]["answer_url"] == f"http://testserver/s/{invitation.token}"
    # What the answer is sliced by later: the customer's attributes and the event's properties.
    assert invitation.properties == {"segment": "retail", "order_id": "A-1001"}
    [stored] = uow.crm_events.rows.values()
    assert (stored.id, stored.external_id, stored.invitation_id) == (
        outcome.event_id,
        "order-1",
        invitation.id,
    )


def test_turkish_customer_is_invited_in_turkish(survey, uow):
    accept(survey, locale="tr-TR", name="Ayşe Demir")

    [requested] = uow.emitted("invitation.requested")
    assert requested["locale"] == "tr"
    assert requested["message"]["greeting"] == "Merhaba Ayşe,"


def test_customer_without_locale_or_channel_is_asked_in_english_by_email(survey, uow):
    accept(survey, locale=None, preferred_channel=None)

    [requested] = uow.emitted("invitation.requested")
    assert (requested["locale"], requested["preferred_channel"]) == ("en", "email")


def test_same_event_id_twice_is_a_duplicate_and_requests_no_second_invitation(survey, uow):
    first = accept(survey, "order-1")
    second = accept(survey, "order-1")

    assert second == DecidedEvent(first.event_id, True, first.decision, first.reason, first.invitation_id)
    assert len(uow.crm_events.rows) == 1 and len(uow.invitations.rows) == 1
    assert len(uow.emitted("invitation.requested")) == 1


def test_intake_stores_the_event_as_received_and_decides_nothing_yet(survey, uow):
    receipt = service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1")))

    assert receipt == service.EventReceipt(receipt.event_id, duplicate=False)
    waiting = service.event_decision(survey, receipt.event_id)
    assert (waiting.status, waiting.decision, waiting.invitation_id) == ("received", None, None)
    assert waiting.customer_external_id == "crm-42"
    assert uow.customers.rows == {} and uow.invitations.rows == {} and uow.events == []
    assert service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1"))) == (
        service.EventReceipt(receipt.event_id, duplicate=True)
    )


def test_the_decider_takes_received_events_first_come_first_decided_in_one_batch(survey, uow):
    first, second = (
        service.accept_crm_event(survey, CrmEventSchema().load(crm_event(event_id)))
        for event_id in ("order-1", "order-2")
    )
    commits = uow.commits

    assert service.decide_received_events(survey) == 2

    assert uow.commits == commits + 1  # both in one transaction
    decided = [service.event_decision(survey, receipt.event_id) for receipt in (first, second)]
    assert [(d.status, d.decision, d.reason_code) for d in decided] == [
        ("decided", "invited", "invited"),
        ("decided", "skipped", "quarantine_after_invitation"),  # the first one's invitation counts
    ]
    assert len(uow.customers.rows) == 1 and len(uow.emitted("invitation.requested")) == 1
    assert all(row.customer_fields is None for row in uow.crm_events.rows.values())
    assert service.decide_received_events(survey) == 0


def test_an_event_that_cannot_be_decided_stays_received_and_the_others_are_decided(
    survey, uow, monkeypatch
):
    broken = service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1")))
    fine = service.accept_crm_event(
        survey, CrmEventSchema().load(crm_event("order-2", external_id="crm-43", email="max@example.com"))
    )
    decide_survey = service.domain.decide_survey

    def failing_for_crm_42(*args, **kwargs):
        if kwargs["customer_key"] == "crm-42":
            raise RuntimeError("a rule that cannot be evaluated")
        return decide_survey(*args, **kwargs)

    monkeypatch.setattr(service.domain, "decide_survey", failing_for_crm_42)
    assert service.decide_received_events(survey) == 1

    assert service.event_decision(survey, broken.event_id).status == "received"
    assert service.event_decision(survey, fine.event_id).decision == "invited"
    monkeypatch.setattr(service.domain, "decide_survey", decide_survey)
    assert service.decide_received_events(survey) == 1  # tried again at the next run
    assert service.event_decision(survey, broken.event_id).decision == "invited"


def test_same_event_id_from_another_source_is_a_new_event(survey, uow):
    accept(survey, "order-1", source="shop")
    outcome = accept(survey, "order-1", source="call-centre")

    assert not outcome.duplicate
    assert len(uow.crm_events.rows) == 2


def test_customer_surveyed_within_thirty_days_is_stored_but_skipped_with_the_reason(survey, uow):
    accept(survey, "order-1")
    outcome = accept(survey, "call-2", event_type="support_call.ended")

    assert (outcome.decision, outcome.reason, outcome.invitation_id) == (
        "skipped",
        "customer was surveyed in the last 30 days",
        None,
    )
    assert len(uow.crm_events.rows) == 2
    assert len(uow.emitted("invitation.requested")) == 1


def test_stale_event_is_stored_but_skipped_with_the_reason(survey, uow):
    outcome = accept(survey, occurred_at=utcnow() - timedelta(days=8))

    assert (outcome.decision, outcome.reason) == ("skipped", "event is older than 7 days")
    assert uow.emitted("invitation.requested") == []
    assert len(uow.customers.rows) == 1 and uow.invitations.rows == {}


def test_later_event_updates_the_customers_crm_fields_and_keeps_the_ones_it_leaves_out(survey, uow):
    accept(survey, "order-1", attributes={"segment": "retail"})
    accept(
        survey,
        "call-2",
        email=None,
        phone="+905555550100",
        name="Jane Smith",
        timezone="Europe/Istanbul",
        attributes={"plan": "gold"},
    )

    [customer] = uow.customers.rows.values()
    assert (customer.email, customer.phone, customer.name, customer.timezone) == (
        "jane@example.com",
        "+905555550100",
        "Jane Smith",
        "Europe/Istanbul",
    )
    assert customer.properties == {"segment": "retail", "plan": "gold"}


def _customer(external_id: str, name: str, now: datetime) -> Customer:
    return Customer(
        id="customer-elsewhere",
        external_id=external_id,
        email="jane@example.com",
        phone=None,
        name=name,
        locale="en",
        timezone=None,
        preferred_channel="email",
        properties={},
        created_at=now,
        updated_at=now,
    )


def _crm_event(external_id: str, customer_id: str, now: datetime) -> CrmEvent:
    return CrmEvent(
        id="event-elsewhere",
        source="default",
        external_id=external_id,
        type="purchase.completed",
        occurred_at=now,
        received_at=now,
        customer_id=customer_id,
        properties={},
        decision="invited",
        reason="purchase survey",
        invitation_id="invitation-elsewhere",
    )


def _invitation(customer_id: str, now: datetime) -> Invitation:
    return Invitation(
        id="invitation-elsewhere",
        token="token-elsewhere",
        customer_id=customer_id,
        crm_event_id="event-elsewhere",
        touchpoint="purchase",
        locale="en",
        properties={},
        created_at=now,
    )


def test_event_decided_meanwhile_by_another_decider_is_not_decided_twice(survey, uow):
    receipt = service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1")))
    now = utcnow()

    def another_decider_decides_it():
        stored = uow.crm_events.get(receipt.event_id)
        uow.customers.add(_customer("crm-42", "Jane Doe", now))
        uow.invitations.add(_invitation("customer-elsewhere", now))
        stored.status, stored.customer_id, stored.customer_fields = "decided", "customer-elsewhere", None
        stored.decision, stored.reason = "invited", "purchase survey"
        stored.invitation_id = "invitation-elsewhere"

    uow.fail_next_commit_with_conflict(another_decider_decides_it)
    assert service.decide_received_events(survey) == 0

    assert list(uow.invitations.rows) == ["invitation-elsewhere"]
    assert uow.emitted("invitation.requested") == []
    assert service.event_decision(survey, receipt.event_id).invitation_id == "invitation-elsewhere"


def test_customer_created_meanwhile_by_another_decider_is_updated_on_retry_and_not_invited_twice(
    survey, uow
):
    now = utcnow()

    def another_decider_invites_the_customer():
        uow.customers.add(_customer("crm-42", "J. Doe", now))
        uow.crm_events.add(_crm_event("order-0", "customer-elsewhere", now))
        uow.invitations.add(_invitation("customer-elsewhere", now))

    receipt = service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1", name="Jane Doe")))
    uow.fail_next_commit_with_conflict(another_decider_invites_the_customer)
    assert service.decide_received_events(survey) == 1

    decided = service.event_decision(survey, receipt.event_id)
    assert (decided.status, decided.decision) == ("decided", "skipped")
    [customer] = uow.customers.rows.values()
    assert (customer.id, customer.name) == ("customer-elsewhere", "Jane Doe")
    assert list(uow.invitations.rows) == ["invitation-elsewhere"]
    assert uow.emitted("invitation.requested") == []


def test_event_whose_decision_conflicts_on_every_try_stays_received_and_is_decided_next_time(survey, uow):
    receipt = service.accept_crm_event(survey, CrmEventSchema().load(crm_event("order-1")))
    for _ in range(3):  # the batch, then the event alone, then its retry
        uow.fail_next_commit_with_conflict()

    assert service.decide_received_events(survey) == 0
    assert service.event_decision(survey, receipt.event_id).status == "received"
    assert uow.customers.rows == {} and uow.invitations.rows == {} and uow.events == []

    assert service.decide_received_events(survey) == 1
    assert service.event_decision(survey, receipt.event_id).decision == "invited"


# --- answer_page and submit_answer ---------------------------------------------------------------------


def test_showing_the_page_of_a_score_link_records_nothing(survey, uow):
    _, token = invite(survey, uow)

    page = service.answer_page(survey, token, 7)

    assert (page.chosen_score, page.answered, page.comment) == (7, False, None)
    assert page.question.startswith("Thank you for your purchase!")
    assert uow.score_clicks.rows == [] and uow.responses.rows == {}
    assert uow.emitted("response.submitted") == []


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("services.survey.service.utcnow", clock)
    return clock


def click(survey, token: str, score: int, clock: Clock, user_agent: str | None = None) -> int:
    """The page's script: posts the click; returns its id, to confirm."""
    outcome = service.record_click(survey, token, score, user_agent)
    assert outcome.counted is False
    return outcome.click_id


def test_a_click_the_page_posts_is_the_answer_once_confirmed_two_seconds_later(survey, uow, clock):
    invitation_id, token = invite(survey, uow)

    click_id = click(survey, token, 9, clock, "Mozilla/5.0")
    assert uow.responses.rows == {}
    with pytest.raises(service.ClickTooEarly):
        service.confirm_click(survey, token, click_id)
    clock.advance(seconds=2)
    outcome = service.confirm_click(survey, token, click_id)

    assert outcome.counted and (outcome.page.answered, outcome.page.chosen_score) == (True, 9)
    assert answers(uow) == [(1, 9, None, "email")]
    [row] = uow.score_clicks.rows
    assert (row.invitation_id, row.score, row.user_agent) == (invitation_id, 9, "Mozilla/5.0")
    assert service.confirm_click(survey, token, click_id).counted  # the script retried: nothing new
    assert answers(uow) == [(1, 9, None, "email")]


def test_a_script_running_scanner_opening_every_link_within_a_second_records_nothing(survey, uow, clock):
    _, token = invite(survey, uow)
    clicks = []
    for score in range(11):
        clicks.append(click(survey, token, score, clock, "HeadlessChrome"))
        clock.advance(seconds=0.1)
    clock.advance(seconds=3)

    assert not any(service.confirm_click(survey, token, click_id).counted for click_id in clicks)
    assert uow.responses.rows == {} and uow.emitted("response.submitted") == []


def test_a_person_clicking_three_seconds_after_a_script_running_scanner_is_counted(survey, uow, clock):
    _, token = invite(survey, uow)
    for score in range(11):
        click(survey, token, score, clock, "HeadlessChrome")
        clock.advance(seconds=0.1)
    clock.advance(seconds=3)
    mine = click(survey, token, 9, clock)
    clock.advance(seconds=2)

    assert service.confirm_click(survey, token, mine).counted
    assert answers(uow) == [(1, 9, None, "email")]


def test_a_click_of_another_invitation_is_not_found(survey, uow, clock):
    _, token = invite(survey, uow)
    _, other = invite(survey, uow, external_id="crm-43", email="other@example.com")
    click_id = click(survey, other, 9, clock)
    clock.advance(seconds=3)
    with pytest.raises(NotFoundError):
        service.confirm_click(survey, token, click_id)


def test_send_after_the_click_adds_the_comment_to_the_same_response(survey, uow, clock):
    _, token = invite(survey, uow)
    click_id = click(survey, token, 9, clock)
    clock.advance(seconds=2)
    service.confirm_click(survey, token, click_id)

    service.submit_answer(survey, token, 9, "Lovely staff")

    assert answers(uow) == [(1, 9, None, "email"), (2, 9, "Lovely staff", "email")]


def test_a_second_click_keeps_the_comment_already_sent(survey, uow, clock):
    _, token = invite(survey, uow)
    service.submit_answer(survey, token, 6, "Slow")

    click_id = click(survey, token, 8, clock)
    clock.advance(seconds=2)
    service.confirm_click(survey, token, click_id)

    assert answers(uow)[-1] == (2, 8, "Slow", "email")


def test_page_of_an_answered_invitation_shows_the_answer(survey, uow):
    _, token = invite(survey, uow)
    service.submit_answer(survey, token, 4, "Too slow")

    page = service.answer_page(survey, token)

    assert (page.answered, page.chosen_score, page.comment) == (True, 4, "Too slow")


def test_unknown_token_is_not_found(survey):
    with pytest.raises(NotFoundError):
        service.answer_page(survey, "not-a-token", 5)
    with pytest.raises(NotFoundError):
        service.record_click(survey, "not-a-token", 5, None)
    with pytest.raises(NotFoundError):
        service.confirm_click(survey, "not-a-token", 1)
    with pytest.raises(NotFoundError):
        service.submit_answer(survey, "not-a-token", 5, None)


def test_confirmed_answer_is_submitted_with_its_comment_trimmed(survey, uow):
    invitation_id, token = invite(survey, uow)

    page = service.submit_answer(survey, token, 4, "  Too slow  ")

    assert (page.answered, page.chosen_score, page.comment) == (True, 4, "Too slow")
    [submitted] = uow.emitted("response.submitted")
    customer = uow.customers.get(uow.invitations.get(invitation_id).customer_id)
    assert submitted["invitation_id"] == invitation_id
    assert (submitted["revision"], submitted["score"], submitted["comment"]) == (1, 4, "Too slow")
    assert (submitted["channel"], submitted["locale"], submitted["touchpoint"]) == ("email", "en", "purchase")
    assert submitted["customer"] == {
        "customer_id": customer.id,
        "external_id": "crm-42",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": None,
    }
    # What followup shows the agent: the order the customer was asked about.
    assert submitted["properties"] == {"order_id": "A-1001"}


def test_blank_comment_is_no_comment(survey, uow):
    _, token = invite(survey, uow)

    service.submit_answer(survey, token, 9, "   ")

    assert answers(uow) == [(1, 9, None, "email")]


def test_second_different_answer_is_revision_two_of_the_same_response(survey, uow):
    _, token = invite(survey, uow)

    service.submit_answer(survey, token, 4, None)
    service.submit_answer(survey, token, 6, "Better on second thought")

    assert answers(uow) == [(1, 4, None, "email"), (2, 6, "Better on second thought", "email")]
    first, second = uow.emitted("response.submitted")
    assert first["response_id"] == second["response_id"]
    assert len(uow.responses.rows) == 1


def test_same_answer_again_emits_nothing(survey, uow):
    _, token = invite(survey, uow)

    service.submit_answer(survey, token, 4, "Too slow")
    service.submit_answer(survey, token, 4, "Too slow")

    assert answers(uow) == [(1, 4, "Too slow", "email")]


# --- record_sms_answer ---------------------------------------------------------------------------------


def sms_received(invitation_id: str, body: str, sid: str) -> dict[str, Any]:
    return new_event(
        "sms.received",
        {
            "message_sid": sid,
            "invitation_id": invitation_id,
            "body": body,
            "received_at": utcnow().isoformat(),
        },
    )


def test_sms_score_is_recorded_as_an_sms_answer(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms")

    service.record_sms_answer(survey, sms_received(invitation_id, "9", "SM1"))

    assert answers(uow) == [(1, 9, None, "sms")]
    [submitted] = uow.emitted("response.submitted")
    assert submitted["invitation_id"] == invitation_id
    assert submitted["customer"]["phone"] == "+15555550100"


def test_the_latest_sms_comment_is_the_one_scored_and_earlier_ones_stay_in_the_history(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms")

    service.record_sms_answer(survey, sms_received(invitation_id, "3", "SM1"))
    service.record_sms_answer(survey, sms_received(invitation_id, "great shop", "SM2"))
    service.record_sms_answer(survey, sms_received(invitation_id, "but the agent was rude", "SM3"))

    assert answers(uow) == [
        (1, 3, None, "sms"),
        (2, 3, "great shop", "sms"),
        (3, 3, "but the agent was rude", "sms"),
    ]
    history = service.answer_history(survey, invitation_id)
    assert [(m.body, m.reading) for m in history] == [
        ("3", "score"),
        ("great shop", "comment"),
        ("but the agent was rude", "comment"),
    ]


def test_comment_before_the_score_waits_for_it_and_the_customer_is_asked_once_for_the_score(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms", name="Jane Doe")

    service.record_sms_answer(survey, sms_received(invitation_id, "great staff", "SM1"))

    assert uow.responses.rows == {} and uow.emitted("response.submitted") == []
    [reprompt] = uow.emitted("reprompt.requested")
    assert reprompt["invitation_id"] == invitation_id and reprompt["locale"] == "en"
    assert reprompt["customer"]["phone"] == "+15555550100" and reprompt["customer"]["email"] is None
    assert "0 (not at all) to 10" in reprompt["text"] and "Closeloop" in reprompt["text"]

    service.record_sms_answer(survey, sms_received(invitation_id, "9", "SM2"))

    assert answers(uow) == [(1, 9, "great staff", "sms")]


@pytest.mark.parametrize("body", ["eleven", "11", "😀", "7-8", "5 stars"])
def test_an_unreadable_reply_is_kept_and_reprompted_once(survey, uow, body):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms")

    service.record_sms_answer(survey, sms_received(invitation_id, body, "SM1"))
    service.record_sms_answer(survey, sms_received(invitation_id, body, "SM2"))

    assert uow.responses.rows == {}
    assert len(uow.emitted("reprompt.requested")) == 1
    assert [m.body for m in service.answer_history(survey, invitation_id)] == [body, body]
    assert uow.invitations.get(invitation_id).reprompted_at is not None


def test_turkish_customer_is_reprompted_in_turkish_and_a_turkish_score_word_is_read(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+905555550100", preferred_channel="sms", locale="tr-TR")

    service.record_sms_answer(survey, sms_received(invitation_id, "on bir", "SM1"))
    service.record_sms_answer(survey, sms_received(invitation_id, "sekiz", "SM2"))

    [reprompt] = uow.emitted("reprompt.requested")
    assert reprompt["locale"] == "tr" and "Lütfen" in reprompt["text"]
    assert answers(uow) == [(1, 8, None, "sms")]


def test_score_with_a_comment_after_the_score_like_9_of_10(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms")

    service.record_sms_answer(survey, sms_received(invitation_id, "9/10 loved it", "SM1"))

    assert answers(uow) == [(1, 9, "loved it", "sms")]


def test_a_comment_sent_from_the_page_replaces_the_earlier_one_which_stays_in_the_history(survey, uow):
    invitation_id, token = invite(survey, uow)

    service.submit_answer(survey, token, 3, "great")
    service.submit_answer(survey, token, 3, "rude")

    assert answers(uow)[-1] == (2, 3, "rude", "email")
    assert [m.comment for m in service.answer_history(survey, invitation_id)] == ["great", "rude"]


def test_sms_for_an_unknown_invitation_records_nothing(survey, uow):
    service.record_sms_answer(survey, sms_received("no-such-invitation", "9", "SM1"))

    assert uow.responses.rows == {} and uow.emitted("response.submitted") == []


def test_redelivered_sms_is_acted_on_once(survey, uow):
    invitation_id, _ = invite(survey, uow, phone="+15555550100", preferred_channel="sms")
    reply = sms_received(invitation_id, "9, great staff", "SM1")

    service.record_sms_answer(survey, reply)
    service.record_sms_answer(survey, reply)

    assert answers(uow) == [(1, 9, "great staff", "sms")]
    assert (reply["id"], "record_sms_answer") in uow.consumed


# --- nps -----------------------------------------------------------------------------------------------


def test_nps_counts_every_response(survey, uow):
    for n, score in enumerate([10, 9, 3]):
        _, token = invite(survey, uow, external_id=f"c{n}", email=f"c{n}@example.com")
        service.submit_answer(survey, token, score, None)

    summary = service.nps(survey)

    assert summary == NpsSummary(responses=3, promoters=2, passives=0, detractors=1)
    assert summary.nps == 33.3


def test_nps_of_a_touchpoint_counts_only_its_responses(survey, uow):
    _, bought = invite(survey, uow, external_id="c1", email="c1@example.com")
    _, called = invite(survey, uow, event_type="support_call.ended", external_id="c2", email="c2@example.com")
    service.submit_answer(survey, bought, 10, None)
    service.submit_answer(survey, called, 0, None)

    assert service.nps(survey, "support_call") == NpsSummary(1, 0, 0, 1)
    assert service.nps(survey, "purchase") == NpsSummary(1, 1, 0, 0)


def test_nps_without_responses_has_no_score(survey):
    assert service.nps(survey) == NpsSummary(0, 0, 0, 0)
    assert service.nps(survey).nps is None
