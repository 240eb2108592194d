from datetime import timedelta

import pytest

from services.followup import domain
from services.followup.domain import (
    FollowupPlan,
    InvalidResolution,
    InvalidTransition,
    ResolutionCode,
    Sla,
    TaskKind,
    TaskPriority,
    TaskStatus,
    TaskTaken,
    TaskUrgency,
)
from shared.clock import utcnow

NOW = utcnow()
SLA = Sla.from_hours(high=24, normal=72)


def test_very_low_score_is_due_within_a_day():
    urgency = domain.task_urgency(2, None, NOW, SLA)
    assert urgency.priority == TaskPriority.HIGH and urgency.due_at == NOW + timedelta(hours=24)


def test_negative_comment_raises_priority_of_a_mild_detractor():
    assert domain.task_urgency(6, "negative", NOW, SLA).priority == TaskPriority.HIGH
    normal = domain.task_urgency(6, "neutral", NOW, SLA)
    assert normal.priority == TaskPriority.NORMAL and normal.due_at == NOW + timedelta(hours=72)


def test_revision_can_make_a_task_more_urgent_and_due_sooner():
    first = TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=72))
    revised = first.revised(TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=25)))
    assert revised == TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=25))


def test_revision_never_lowers_the_priority_nor_gives_more_time():
    first = TaskUrgency(TaskPriority.HIGH, NOW + timedelta(hours=24))
    assert first.revised(TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=73))) == first


# The task state machine, as the success team's queue works: every move not listed here is forbidden.
MOVES = {
    (TaskStatus.OPEN, TaskStatus.IN_PROGRESS),
    (TaskStatus.OPEN, TaskStatus.DISMISSED),
    (TaskStatus.IN_PROGRESS, TaskStatus.RESOLVED),
    (TaskStatus.RESOLVED, TaskStatus.CLOSED),
    (TaskStatus.RESOLVED, TaskStatus.OPEN),
    (TaskStatus.CLOSED, TaskStatus.OPEN),
}
FORBIDDEN = [
    (current, requested)
    for current in TaskStatus
    for requested in TaskStatus
    if (current, requested) not in MOVES
]


@pytest.mark.parametrize(("current", "requested"), sorted(MOVES))
def test_allowed_move_gives_the_requested_status(current, requested):
    assert domain.transition(current, requested) is requested


@pytest.mark.parametrize(("current", "requested"), FORBIDDEN)
def test_forbidden_move_raises_an_error_naming_it(current, requested):
    with pytest.raises(InvalidTransition, match=f"^an? {current} task cannot become {requested}$") as raised:
        domain.transition(current, requested)
    assert (raised.value.from_status, raised.value.to_status) == (current, requested)


def test_forbidden_move_reads_as_english():
    with pytest.raises(InvalidTransition, match="^an open task cannot become closed$"):
        domain.transition("open", "closed")
    with pytest.raises(InvalidTransition, match="^a dismissed task cannot become open$"):
        domain.transition("dismissed", "open")


@pytest.mark.parametrize("status", list(TaskStatus))
def test_moves_allowed_from_a_status_are_the_listed_ones(status):
    assert domain.allowed_moves(status) == {requested for current, requested in MOVES if current == status}


def test_status_as_stored_in_the_database_is_accepted():
    assert domain.allowed_moves("open") == {TaskStatus.IN_PROGRESS, TaskStatus.DISMISSED}
    assert domain.transition("open", "in_progress") is TaskStatus.IN_PROGRESS
    with pytest.raises(InvalidTransition):
        domain.transition("dismissed", "open")


# The SLA


def test_sla_from_settings_sets_both_due_times():
    sla = Sla.from_hours(high=4, normal=48.5)

    assert domain.task_urgency(1, None, NOW, sla).due_at == NOW + timedelta(hours=4)
    assert domain.task_urgency(5, "neutral", NOW, sla).due_at == NOW + timedelta(hours=48, minutes=30)
    assert domain.task_urgency(5, "negative", NOW, sla).due_at == NOW + timedelta(hours=4)


@pytest.mark.parametrize("status", [TaskStatus.OPEN, TaskStatus.IN_PROGRESS])
def test_task_still_to_act_on_is_overdue_once_its_due_time_has_passed(status):
    due = NOW + timedelta(hours=24)
    assert not domain.is_overdue(status, due, due)
    assert domain.is_overdue(status, due, due + timedelta(seconds=1))


@pytest.mark.parametrize("status", [TaskStatus.RESOLVED, TaskStatus.CLOSED, TaskStatus.DISMISSED])
def test_task_nobody_has_to_act_on_is_never_overdue(status):
    assert not domain.is_overdue(status, NOW, NOW + timedelta(days=30))


# Resolutions and claims


def test_resolving_needs_a_resolution_code():
    with pytest.raises(InvalidResolution, match="needs a resolution code"):
        domain.resolution_for(TaskStatus.RESOLVED, None)
    assert domain.resolution_for("resolved", "unreachable") is ResolutionCode.UNREACHABLE


def test_resolution_code_is_refused_on_any_other_move():
    with pytest.raises(InvalidResolution, match="only when resolving"):
        domain.resolution_for(TaskStatus.CLOSED, "contacted_resolved")
    assert domain.resolution_for(TaskStatus.CLOSED, None) is None


def test_unknown_resolution_code_is_refused():
    with pytest.raises(ValueError):
        domain.resolution_for(TaskStatus.RESOLVED, "gave_up")


def test_claiming_an_open_task_puts_it_in_progress():
    assert domain.claimed_status("open", None, "u-1") is TaskStatus.IN_PROGRESS
    # Assigned to the claimant, who now starts on it.
    assert domain.claimed_status("open", "u-1", "u-1") is TaskStatus.IN_PROGRESS


def test_claiming_a_task_someone_else_has_is_refused():
    with pytest.raises(TaskTaken):
        domain.claimed_status("open", "u-2", "u-1")
    with pytest.raises(TaskTaken):
        domain.claimed_status("in_progress", "u-2", "u-1")


def test_claiming_a_task_nobody_has_to_act_on_names_the_forbidden_move():
    with pytest.raises(InvalidTransition, match="a resolved task cannot become in_progress"):
        domain.claimed_status("resolved", None, "u-1")


# Round-robin


def test_members_take_turns_in_their_order_and_start_again_after_the_last():
    members = ["ana", "ben", "cem"]
    assert [domain.next_in_rotation(members, turn) for turn in range(1, 8)] == [
        "ana",
        "ben",
        "cem",
        "ana",
        "ben",
        "cem",
        "ana",
    ]


def test_team_without_members_gives_nobody_a_turn():
    assert domain.next_in_rotation([], 1) is None


# The queue's order


def test_each_sort_key_has_its_natural_order_unless_asked_otherwise():
    assert domain.TaskQuery(sort=domain.TaskSort.DUE_AT).is_descending is False
    assert domain.TaskQuery(sort=domain.TaskSort.CREATED_AT).is_descending is True
    assert domain.TaskQuery(sort=domain.TaskSort.SCORE).is_descending is False
    assert domain.TaskQuery().is_descending is True  # priority: high first
    assert domain.TaskQuery(sort=domain.TaskSort.PRIORITY, descending=False).is_descending is False
    assert domain.TaskQuery(page=3, page_size=20).offset == 40


# --- What an answer calls for ----------------------------------------------------------------------------

NEGATIVE = {"label": "negative", "polarity": -0.6}


@pytest.mark.parametrize(
    ("score", "sentiment", "passives", "plan"),
    [
        (0, None, "ignore", FollowupPlan(TaskKind.DETRACTOR, referral=False)),
        (6, NEGATIVE, "task", FollowupPlan(TaskKind.DETRACTOR, referral=False)),
        (7, None, "ignore", FollowupPlan(None, referral=False)),
        (8, NEGATIVE, "ignore", FollowupPlan(None, referral=False)),
        (7, None, "task", FollowupPlan(TaskKind.PASSIVE, referral=False)),
        (9, None, "task", FollowupPlan(None, referral=True)),
        (10, {"label": "positive", "polarity": 0.8}, "ignore", FollowupPlan(None, referral=True)),
        (9, NEGATIVE, "ignore", FollowupPlan(TaskKind.MISMATCH, referral=False)),
    ],
)
def test_what_an_answer_calls_for(score, sentiment, passives, plan):
    assert domain.plan_for(score, sentiment, passives) == plan


@pytest.mark.parametrize(
    ("score", "sentiment", "mismatch"),
    [
        (9, {"label": "negative", "polarity": -0.3}, True),
        (10, {"label": "negative", "polarity": -0.29}, False),
        (9, {"label": "neutral", "polarity": -0.9}, False),
        (9, {"label": "negative", "polarity": None}, False),
        (9, None, False),
        (8, {"label": "negative", "polarity": -0.9}, False),
    ],
)
def test_mismatch_is_a_promoter_score_with_a_clearly_negative_comment(score, sentiment, mismatch):
    assert domain.is_mismatch(score, sentiment) is mismatch


def test_mismatch_is_normal_priority_and_a_passive_low_with_its_own_sla():
    sla = Sla.from_hours(high=24, normal=72, low=168)

    mismatch = domain.urgency_for(TaskKind.MISMATCH, 9, "negative", NOW, sla)
    passive = domain.urgency_for(TaskKind.PASSIVE, 7, None, NOW, sla)

    assert mismatch == TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=72))
    assert passive == TaskUrgency(TaskPriority.LOW, NOW + timedelta(hours=168))


def test_revision_of_a_low_priority_task_takes_the_more_urgent_priority():
    low = TaskUrgency(TaskPriority.LOW, NOW + timedelta(hours=168))

    assert (
        low.revised(TaskUrgency(TaskPriority.NORMAL, NOW + timedelta(hours=80))).priority
        == TaskPriority.NORMAL
    )
    assert TaskUrgency(TaskPriority.NORMAL, NOW).revised(low).priority == TaskPriority.NORMAL


def test_a_message_to_the_customer_goes_with_a_resolution_only():
    assert domain.close_loop_message_for("resolved", "  Thanks  ") == "Thanks"
    assert domain.close_loop_message_for("resolved", " ") is None
    assert domain.close_loop_message_for("open", None) is None
    with pytest.raises(domain.InvalidCloseLoopMessage):
        domain.close_loop_message_for("closed", "Thanks")
    with pytest.raises(domain.InvalidCloseLoopMessage):
        domain.close_loop_message_for("resolved", "x" * 1001)


# --- Referral links --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("landing", "expected"),
    [
        ("https://shop.example.com/refer", "https://shop.example.com/refer?ref=Abc123_-xyz"),
        (
            "https://shop.example.com/?utm_source=nps&ref=old",
            "https://shop.example.com/?utm_source=nps&ref=Abc123_-xyz",
        ),
        ("https://shop.example.com/r#form", "https://shop.example.com/r?ref=Abc123_-xyz#form"),
    ],
)
def test_landing_url_carries_the_code_as_ref(landing, expected):
    assert domain.landing_url(landing, "Abc123_-xyz") == expected


def test_referral_codes_are_random_and_of_one_shape():
    codes = {domain.new_referral_code() for _ in range(200)}

    assert len(codes) == 200 and all(domain.is_referral_code(code) for code in codes)
    assert not any(
        domain.is_referral_code(code) for code in ("", "short", "a" * 33, "abc\x00defgh", "abc/defgh")
    )


def test_customer_contact_leaves_out_what_dispatch_could_not_use():
    contact = domain.customer_contact("c-1", "N" * 300, "a@example.com", "0555 0100", "sms")

    assert contact == {
        "customer_id": "c-1",
        "name": "N" * 200,
        "email": "a@example.com",
        "phone": None,
        # They answered by SMS, but that number cannot be texted: the address they have.
        "preferred_channel": "email",
    }
    assert domain.preferred_channel(None, None, "+15555550100") == "sms"
    assert domain.preferred_channel(None, "a@example.com", "+15555550100") == "email"


def test_a_request_is_never_sent_to_a_customer_without_email_or_phone():
    assert domain.request_send_at(NOW, timedelta(minutes=30), None, None) is None
    assert domain.request_send_at(NOW, timedelta(minutes=30), None, "+15555550100") == NOW + timedelta(
        minutes=30
    )
