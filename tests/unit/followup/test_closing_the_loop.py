"""Closing the loop outward on the in-memory unit of work: answers that change, mismatches, passives, referral
and review requests sent through dispatch, close-the-loop messages, and referral conversions."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from services.followup import service
from services.followup.domain import ReferralStatus, TaskPriority, TaskStatus, TimelineKind
from shared.events import new_event, parse_event
from shared.http import DomainError
from shared.settings import Settings
from tests.fakes import ROBOT

from .fakes import CRM_HOST, FakeFollowupUnitOfWork, fake_runtime
from .support import MAYA, NEGATIVE, NEUTRAL, START, scored, the_task

LANDING = "https://shop.example.com/refer?utm_source=closeloop"
CRM_URL = f"https://{CRM_HOST}/in"
REVIEWS = "https://g.page/r/closeloop-demo/review"
# Negative, but not clearly: one grumpy word in an otherwise warm comment.
MILDLY_NEGATIVE = {**NEGATIVE, "polarity": -0.2}


def runtime_with(uow: FakeFollowupUnitOfWork, **settings):
    """Referral requests on (a landing page), sent with the answer unless a test says otherwise."""
    return fake_runtime(
        uow, **{"followup_referral_url": LANDING, "followup_request_delay_minutes": 0, **settings}
    )


def the_referral(uow: FakeFollowupUnitOfWork, response_id: str = "r-1"):
    request = uow.referrals.for_response(response_id)
    assert request is not None, f"no referral request for {response_id}"
    return request


def code_used(code: str, customer_id: str = "c-friend", event_id: str = "e-1") -> dict:
    return new_event(
        "referral.code_used",
        {
            "referral_code": code,
            "event_id": event_id,
            "event_type": "purchase.completed",
            "customer_id": customer_id,
            "occurred_at": START.isoformat(),
        },
    )


def resolved_task(runtime, uow, **change) -> dict:
    """Open a task, have Maya resolve it, and return the data of the followup.resolved it emitted."""
    service.act_on_scored_response(runtime, scored(3, comment="Nobody called", sentiment=NEGATIVE))
    task = the_task(uow)
    service.claim_task(runtime, MAYA, task.id)
    service.change_status(runtime, MAYA, task.id, TaskStatus.RESOLVED, "contacted_resolved", **change)
    [data] = uow.emitted("followup.resolved")
    return data


# --- Answers that change ---------------------------------------------------------------------------------


def test_promoter_whose_score_drops_has_the_waiting_referral_request_withdrawn_and_never_sent(uow, clock):
    runtime = runtime_with(uow, followup_request_delay_minutes=30)
    service.act_on_scored_response(runtime, scored(9))
    dropped_at = clock.advance(minutes=5)
    service.act_on_scored_response(
        runtime, scored(6, revision=2, comment="Actually, slow", sentiment=NEUTRAL)
    )
    clock.advance(hours=1)

    assert service.send_due_requests(runtime) == 0
    request = the_referral(uow)
    assert (request.status, request.withdrawn_at, request.sent_at) == ("withdrawn", dropped_at, None)
    assert uow.emitted("referral.requested") == []
    assert the_task(uow).status == TaskStatus.OPEN


def test_referral_request_sent_already_is_withdrawn_when_the_score_drops_and_not_sent_again(uow, clock):
    runtime = runtime_with(uow)
    service.act_on_scored_response(runtime, scored(10))
    service.act_on_scored_response(runtime, scored(8, revision=2))
    clock.advance(hours=1)
    service.send_due_requests(runtime)

    request = the_referral(uow)
    assert (request.status, request.sent_at) == ("withdrawn", START)
    assert len(uow.emitted("referral.requested")) == 1


def test_promoter_who_drops_and_comes_back_is_asked_again_with_one_message(uow, clock):
    runtime = runtime_with(uow, followup_request_delay_minutes=30)
    service.act_on_scored_response(runtime, scored(9))
    service.act_on_scored_response(runtime, scored(5, revision=2))
    back_at = clock.advance(minutes=10)
    service.act_on_scored_response(runtime, scored(10, revision=3, comment="All good now", sentiment=NEUTRAL))

    request = the_referral(uow)
    assert (request.status, request.withdrawn_at, request.send_at) == (
        "requested",
        None,
        back_at + timedelta(minutes=30),
    )
    assert the_task(uow).status == TaskStatus.DISMISSED
    clock.advance(minutes=31)
    assert service.send_due_requests(runtime) == 1
    assert service.send_due_requests(runtime) == 0
    assert len(uow.emitted("referral.requested")) == 1


def test_dismissed_task_opens_again_when_the_score_drops_again(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5))
    service.act_on_scored_response(runtime, scored(9, revision=2))
    dropped_at = clock.advance(hours=30)
    service.act_on_scored_response(runtime, scored(2, revision=3, comment="Broken again", sentiment=NEGATIVE))

    task = the_task(uow)
    assert (task.status, task.score, task.comment) == (TaskStatus.OPEN, 2, "Broken again")
    # Dismissed long ago: the team gets the SLA's whole time from now, not from the first answer.
    assert task.priority == TaskPriority.HIGH and task.due_at == dropped_at + timedelta(hours=24)
    moves = [(e.from_status, e.to_status) for e in uow.timeline.of(task.id) if e.kind == "status_changed"]
    assert moves == [("open", "dismissed"), ("dismissed", "open")]
    assert the_referral(uow).status == ReferralStatus.WITHDRAWN


def test_later_comment_replaces_the_one_the_task_shows(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(4, comment="Late delivery", sentiment=NEUTRAL))
    service.act_on_scored_response(
        runtime, scored(4, revision=2, comment="And the agent hung up on me", sentiment=NEGATIVE)
    )

    task = the_task(uow)
    assert task.comment == "And the agent hung up on me" and task.sentiment["label"] == "negative"


def test_task_someone_works_on_shows_the_raised_score_and_its_comment(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(5, comment="Slow", sentiment=NEUTRAL))
    service.claim_task(runtime, MAYA, the_task(uow).id)
    service.act_on_scored_response(
        runtime, scored(9, revision=2, comment="Sorted, thanks", sentiment=NEUTRAL)
    )

    task = the_task(uow)
    assert (task.status, task.score, task.comment) == (TaskStatus.IN_PROGRESS, 9, "Sorted, thanks")
    assert uow.timeline.of(task.id)[-1].kind == TimelineKind.REVISED


def test_older_revision_arriving_late_changes_nothing_for_a_response_without_a_task(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(9, revision=2))
    service.act_on_scored_response(runtime, scored(3, revision=1))

    assert uow.tasks.for_response("r-1") is None
    assert the_referral(uow).status == ReferralStatus.REQUESTED


# --- Mismatches ------------------------------------------------------------------------------------------


def test_high_score_with_a_clearly_negative_comment_opens_a_mismatch_task_instead_of_a_referral(uow, clock):
    runtime = runtime_with(uow)
    service.act_on_scored_response(runtime, scored(9, comment="The agent was rude", sentiment=NEGATIVE))

    task = the_task(uow)
    assert task.mismatch is True and task.status == TaskStatus.OPEN
    assert task.priority == TaskPriority.NORMAL and task.due_at == START + timedelta(hours=72)
    assert uow.referrals.for_response("r-1") is None and uow.emitted("referral.requested") == []


@pytest.mark.parametrize(
    "sentiment", [MILDLY_NEGATIVE, {**NEGATIVE, "label": "neutral"}, {**NEGATIVE, "polarity": None}]
)
def test_high_score_with_a_comment_that_is_not_clearly_negative_gets_a_referral_request(
    runtime, uow, clock, sentiment
):
    service.act_on_scored_response(runtime, scored(10, comment="Great, one small thing", sentiment=sentiment))

    assert uow.tasks.for_response("r-1") is None
    assert the_referral(uow).status == ReferralStatus.REQUESTED


def test_promoter_whose_later_comment_reads_negative_gets_a_mismatch_task_and_no_referral_message(uow, clock):
    runtime = runtime_with(uow, followup_request_delay_minutes=30)
    service.act_on_scored_response(runtime, scored(9))  # an SMS "9"...
    clock.advance(minutes=2)
    service.act_on_scored_response(runtime, scored(9, revision=2, comment="Rude agent", sentiment=NEGATIVE))
    clock.advance(hours=1)
    service.send_due_requests(runtime)

    assert the_task(uow).mismatch is True
    assert the_referral(uow).status == ReferralStatus.WITHDRAWN
    assert uow.emitted("referral.requested") == []


def test_mismatch_task_is_dismissed_when_the_latest_comment_no_longer_reads_negative(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(10, comment="Rude agent", sentiment=NEGATIVE))
    service.act_on_scored_response(runtime, scored(10, revision=2, comment="Fixed, great", sentiment=NEUTRAL))

    task = the_task(uow)
    assert task.status == TaskStatus.DISMISSED and task.comment == "Fixed, great"
    assert the_referral(uow).status == ReferralStatus.REQUESTED


def test_mismatch_becomes_a_detractor_task_when_the_score_drops(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(9, comment="Rude agent", sentiment=NEGATIVE))
    service.act_on_scored_response(runtime, scored(2, revision=2, comment="Rude agent", sentiment=NEGATIVE))

    task = the_task(uow)
    assert task.mismatch is False and task.priority == TaskPriority.HIGH


# --- Passives --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [7, 8])
def test_passive_gets_a_low_priority_task_due_a_week_later_when_the_settings_ask_for_it(uow, clock, score):
    runtime = fake_runtime(uow, followup_passives="task")
    service.act_on_scored_response(runtime, scored(score, comment="Fine", sentiment=NEUTRAL))

    task = the_task(uow)
    assert (task.priority, task.due_at, task.mismatch) == (
        TaskPriority.LOW,
        START + timedelta(hours=168),
        False,
    )
    assert service.list_referral_requests(runtime) == []


def test_passive_task_follows_the_low_sla_setting(uow, clock):
    runtime = fake_runtime(uow, followup_passives="task", followup_sla_low_hours=100)
    service.act_on_scored_response(runtime, scored(7))

    assert the_task(uow).due_at == START + timedelta(hours=100)


def test_passive_is_ignored_by_default(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(8, comment="Fine", sentiment=NEUTRAL))

    assert uow.tasks.for_response("r-1") is None


def test_passive_task_is_dismissed_when_the_score_rises_and_made_urgent_when_it_drops(uow, clock):
    runtime = fake_runtime(uow, followup_passives="task")
    service.act_on_scored_response(runtime, scored(7, response_id="up"))
    service.act_on_scored_response(runtime, scored(10, revision=2, response_id="up"))
    service.act_on_scored_response(runtime, scored(8, response_id="down"))
    service.act_on_scored_response(runtime, scored(1, revision=2, response_id="down"))

    assert the_task(uow, "up").status == TaskStatus.DISMISSED
    down = the_task(uow, "down")
    assert down.priority == TaskPriority.HIGH and down.due_at == START + timedelta(hours=24)


def test_queue_lists_low_priority_tasks_after_normal_ones(uow, clock):
    runtime = fake_runtime(uow, followup_passives="task")
    service.act_on_scored_response(runtime, scored(7, response_id="passive"))
    service.act_on_scored_response(runtime, scored(6, response_id="detractor"))
    service.act_on_scored_response(runtime, scored(2, response_id="angry"))

    listed = [task.response_id for task in service.list_tasks(runtime).items]
    assert listed == ["angry", "detractor", "passive"]


# --- Referral requests are sent --------------------------------------------------------------------------


def test_promoter_is_sent_their_own_tracked_referral_link_in_the_same_transaction(uow, clock):
    runtime = runtime_with(uow)
    service.act_on_scored_response(runtime, scored(10))

    request = the_referral(uow)
    [data] = uow.emitted("referral.requested")
    assert data["referral_id"] == request.id
    assert data["referral_url"] == f"http://testserver/r/{request.code}"
    assert data["customer"] == {
        "customer_id": "c-1",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "+15555550100",
        "timezone": None,
        "preferred_channel": "sms",  # where they answered
    }
    assert data["locale"] == "en"
    assert (request.sent_at, request.send_at) == (START, None)
    # The outbox and the request's state are one commit: a failed block would drop both.
    assert uow.commits == 1


def test_every_referral_request_has_its_own_unguessable_code(uow, clock):
    runtime = runtime_with(uow)
    for n in range(40):
        service.act_on_scored_response(runtime, scored(9, response_id=f"r-{n}"))

    codes = {the_referral(uow, f"r-{n}").code for n in range(40)}
    assert len(codes) == 40
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", code) for code in codes)  # 96 random bits
    urls = {data["referral_url"] for data in uow.emitted("referral.requested")}
    assert urls == {f"http://testserver/r/{code}" for code in codes}


def test_referral_request_waits_the_delay_and_the_due_job_sends_it_once(uow, clock):
    runtime = runtime_with(uow, followup_request_delay_minutes=30)
    service.act_on_scored_response(runtime, scored(9))

    assert the_referral(uow).send_at == START + timedelta(minutes=30)
    clock.advance(minutes=29)
    assert service.send_due_requests(runtime) == 0
    sent_at = clock.advance(minutes=2)
    assert service.send_due_requests(runtime) == 1
    assert service.send_due_requests(runtime) == 0
    assert len(uow.emitted("referral.requested")) == 1
    assert the_referral(uow).sent_at == sent_at


def test_without_a_landing_page_the_referral_request_is_recorded_and_never_sent(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(10))
    clock.advance(days=1)

    assert service.send_due_requests(runtime) == 0
    request = the_referral(uow)
    assert (request.status, request.send_at, request.sent_at) == ("requested", None, None)
    assert uow.emitted("referral.requested") == []


def test_customer_with_neither_email_nor_phone_is_not_sent_a_referral_request(uow, clock):
    runtime = runtime_with(uow)
    unreachable = {
        "customer_id": "c-1",
        "external_id": "crm-1",
        "name": "Jane Doe",
        "email": None,
        "phone": None,
    }
    service.act_on_scored_response(runtime, scored(10, customer=unreachable))

    assert the_referral(uow).send_at is None and uow.emitted("referral.requested") == []


def test_customer_who_answered_by_email_is_sent_their_link_by_email(uow, clock):
    runtime = runtime_with(uow)
    service.act_on_scored_response(runtime, scored(10, channel="email"))

    [data] = uow.emitted("referral.requested")
    assert data["customer"]["preferred_channel"] == "email"


# --- Review requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 4, 7, 9, 10])
def test_every_respondent_is_asked_for_a_review_whatever_the_score(uow, clock, score):
    runtime = fake_runtime(uow, followup_review_url=REVIEWS, followup_request_delay_minutes=0)
    service.act_on_scored_response(runtime, scored(score))

    [data] = uow.emitted("review.requested")
    assert (data["review_url"], data["score"], data["locale"]) == (REVIEWS, score, "en")
    assert data["customer"]["customer_id"] == "c-1" and data["customer"]["preferred_channel"] == "sms"


def test_review_request_is_sent_once_per_response_not_per_revision(uow, clock):
    runtime = fake_runtime(uow, followup_review_url=REVIEWS, followup_request_delay_minutes=0)
    service.act_on_scored_response(runtime, scored(9))
    service.act_on_scored_response(runtime, scored(9, revision=2, comment="Lovely", sentiment=NEUTRAL))
    service.act_on_scored_response(runtime, scored(3, revision=3))
    service.act_on_scored_response(runtime, scored(6, response_id="r-2"))

    assert [(data["score"]) for data in uow.emitted("review.requested")] == [9, 6]


def test_waiting_review_request_is_worded_for_the_latest_score(uow, clock):
    runtime = fake_runtime(uow, followup_review_url=REVIEWS)  # the default delay: 30 minutes
    service.act_on_scored_response(runtime, scored(10))
    service.act_on_scored_response(
        runtime, scored(4, revision=2, comment="Changed my mind", sentiment=NEUTRAL)
    )
    clock.advance(minutes=30)

    assert service.send_due_requests(runtime) == 1
    [data] = uow.emitted("review.requested")
    assert data["score"] == 4


def test_nobody_is_asked_for_a_review_without_a_review_page(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(10))
    clock.advance(days=1)
    service.send_due_requests(runtime)

    assert uow.emitted("review.requested") == [] and uow.review_requests.by_response == {}


# --- Close the loop --------------------------------------------------------------------------------------


def test_resolving_a_task_emits_followup_resolved_with_the_message_and_the_follow_up_survey_days(uow, clock):
    runtime = fake_runtime(uow, followup_follow_up_survey_days=30)
    data = resolved_task(
        runtime, uow, note="Refunded", close_loop_message="  Sorry again: your refund is on its way.  "
    )

    task = the_task(uow)
    assert data["task_id"] == task.id and (data["response_id"], data["invitation_id"]) == ("r-1", "i-r-1")
    assert data["close_loop_message"] == "Sorry again: your refund is on its way."
    assert (data["follow_up_survey_after_days"], data["resolution_code"]) == (30, "contacted_resolved")
    assert (data["locale"], data["customer"]["preferred_channel"]) == ("en", "sms")
    assert data["customer"]["email"] == "jane@example.com"
    assert task.close_loop_message == "Sorry again: your refund is on its way."
    assert uow.timeline.of(task.id)[-1].close_loop_message == "Sorry again: your refund is on its way."
    # A contract survey and dispatch both read.
    parse_event(uow.events[-1], "followup.resolved")


def test_resolving_without_a_message_asks_dispatch_nothing_and_survey_nothing_by_default(runtime, uow, clock):
    data = resolved_task(runtime, uow, close_loop_message="   ")

    assert (data["close_loop_message"], data["follow_up_survey_after_days"]) == (None, None)


def test_a_message_to_the_customer_is_refused_unless_the_task_is_being_resolved(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)

    with pytest.raises(DomainError) as refused:
        service.change_status(runtime, MAYA, task.id, TaskStatus.IN_PROGRESS, close_loop_message="Hello")

    assert refused.value.status == 400 and "close_loop_message" in refused.value.errors
    assert the_task(uow).status == TaskStatus.OPEN and uow.emitted("followup.resolved") == []


def test_reopening_a_task_clears_the_message_it_sent_and_a_new_resolution_closes_the_loop_again(
    runtime, uow, clock
):
    resolved_task(runtime, uow, close_loop_message="Refund sent")
    task = the_task(uow)
    service.change_status(runtime, MAYA, task.id, TaskStatus.OPEN)
    assert task.close_loop_message is None
    service.claim_task(runtime, MAYA, task.id)
    service.change_status(runtime, MAYA, task.id, TaskStatus.RESOLVED, "unreachable")

    assert [data["resolution_code"] for data in uow.emitted("followup.resolved")] == [
        "contacted_resolved",
        "unreachable",
    ]


def test_task_opened_before_followup_kept_a_locale_closes_the_loop_in_english(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(3))
    task = the_task(uow)
    task.locale = task.channel = None
    task.customer_phone = "555-0100"  # not E.164: left out rather than failing the event
    service.claim_task(runtime, MAYA, task.id)
    service.change_status(runtime, MAYA, task.id, TaskStatus.RESOLVED, "contacted_resolved")

    [data] = uow.emitted("followup.resolved")
    assert data["locale"] == "en"
    assert (data["customer"]["phone"], data["customer"]["preferred_channel"]) == (None, "email")


# --- Referral conversions --------------------------------------------------------------------------------


def test_a_used_referral_code_converts_its_request_once(uow, clock):
    runtime = runtime_with(uow)
    crm = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["referral.converted"])
    service.act_on_scored_response(runtime, scored(10))
    code = the_referral(uow).code
    used_at = clock.advance(days=3)

    service.attribute_referral(runtime, code_used(code, event_id="e-1"))
    service.attribute_referral(runtime, code_used(code, event_id="e-2"))  # a second purchase with the code

    request = the_referral(uow)
    assert (request.status, request.converted_at) == ("converted", used_at)
    [delivery] = uow.webhook_deliveries.for_endpoint(crm.id, 10)
    conversion = delivery.payload["data"]["conversion"]
    assert (conversion["referral_code"], conversion["event_id"], conversion["customer_id"]) == (
        code,
        "e-1",
        "c-friend",
    )


def test_an_unknown_referral_code_is_logged_and_acknowledged(runtime, uow, clock, caplog):
    service.act_on_scored_response(runtime, scored(10))
    event = code_used("NoSuchCode123")

    with caplog.at_level(logging.WARNING, "services.followup.service"):
        service.attribute_referral(runtime, event)

    assert (event["id"], "attribute_referral") in uow.consumed
    assert the_referral(uow).status == ReferralStatus.REQUESTED
    assert "no referral request has the code 'NoSu'…" in caplog.text and "NoSuchCode123" not in caplog.text


def test_a_promoter_using_their_own_code_is_not_a_referral(runtime, uow, clock):
    service.act_on_scored_response(runtime, scored(10))

    service.attribute_referral(runtime, code_used(the_referral(uow).code, customer_id="c-1"))

    assert the_referral(uow).status == ReferralStatus.REQUESTED


def test_converting_a_referral_twice_announces_it_once(runtime, uow, clock):
    crm = service.create_webhook_endpoint(runtime, ROBOT, CRM_URL, ["referral.converted"])
    service.act_on_scored_response(runtime, scored(10))
    request = the_referral(uow)

    service.convert_referral(runtime, request.id, {"order": "A-1"})
    service.convert_referral(runtime, request.id, {"order": "A-2"})

    assert request.status == "converted"
    assert len(uow.webhook_deliveries.for_endpoint(crm.id, 10)) == 1


# --- Settings --------------------------------------------------------------------------------------------


def test_closing_the_loop_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "FOLLOWUP_PASSIVES": "Task",
            "FOLLOWUP_SLA_LOW_HOURS": "96",
            "FOLLOWUP_REFERRAL_URL": LANDING,
            "FOLLOWUP_REVIEW_URL": REVIEWS,
            "FOLLOWUP_REQUEST_DELAY_MINUTES": "0",
            "FOLLOWUP_FOLLOW_UP_SURVEY_DAYS": "30",
        }
    )

    assert (settings.followup_passives, settings.followup_sla_low_hours) == ("task", 96)
    assert (settings.followup_referral_url, settings.followup_review_url) == (LANDING, REVIEWS)
    assert (settings.followup_request_delay_minutes, settings.followup_follow_up_survey_days) == (0, 30)
    defaults = Settings.from_env({})
    assert (defaults.followup_passives, defaults.followup_sla_low_hours) == ("ignore", 168)
    assert (defaults.followup_referral_url, defaults.followup_review_url) == (None, None)
    assert (defaults.followup_request_delay_minutes, defaults.followup_follow_up_survey_days) == (30, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FOLLOWUP_PASSIVES", "call"),
        ("FOLLOWUP_REFERRAL_URL", "javascript:alert(1)"),
        ("FOLLOWUP_REVIEW_URL", "g.page/review"),
        ("FOLLOWUP_REQUEST_DELAY_MINUTES", "-5"),
        ("FOLLOWUP_FOLLOW_UP_SURVEY_DAYS", "0"),
        ("FOLLOWUP_FOLLOW_UP_SURVEY_DAYS", "3²"),
        ("FOLLOWUP_SLA_LOW_HOURS", "0"),
    ],
)
def test_a_closing_the_loop_setting_that_makes_no_sense_stops_the_start(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})
