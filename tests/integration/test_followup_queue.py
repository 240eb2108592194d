"""The success team's queue on PostgreSQL: the SQL of filters, order and pages, and what concurrency shows."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from services.followup import domain, service
from services.followup.app import create_app
from services.followup.domain import (
    OWNER_NONE,
    ResolutionCode,
    StaffMember,
    TaskPriority,
    TaskQuery,
    TaskSort,
    TaskStatus,
)
from shared.clock import utcnow
from shared.events import new_event
from shared.http import ConflictError
from shared.principal import Principal, Role
from tests.conftest import make_settings, migrated_service, staff_client

ANA = Principal("user", "u-ana", "Ana Lima", Role.AGENT)
BEN = Principal("user", "u-ben", "Ben Okafor", Role.AGENT)
MAYA = Principal("user", "u-maya", "Maya Şahin", Role.MANAGER)


@pytest.fixture
def followup(postgres_url):
    with migrated_service("followup", make_settings(postgres_url)) as runtime:
        yield runtime


def scored(response_id: str, score: int, touchpoint: str = "support_call") -> dict:
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": 1,
            "score": score,
            "comment": None,
            "locale": "tr",
            "touchpoint": touchpoint,
            "channel": "email",
            "customer": {
                "customer_id": f"c-{response_id}",
                "external_id": None,
                "name": "Ayşe Demir",
                "email": "ayse@example.com",
                "phone": "+905555550100",
            },
            "submitted_at": utcnow().isoformat(),
            "properties": {"order_id": "A-1001", "amount": 129.5},
            "sentiment": None,
        },
    )


def task_of(runtime, response_id: str):
    with runtime.unit_of_work() as uow:
        return uow.tasks.for_response(response_id)


def listed(runtime, **query) -> list[str]:
    return [task.response_id for task in service.list_tasks(runtime, TaskQuery(**query), ANA).items]


def test_filters_order_and_pages_run_in_sql(followup):
    for response_id, score, touchpoint in [
        ("a", 6, "purchase"),
        ("b", 2, "support_call"),
        ("c", 5, "support_call"),
        ("d", 1, "site_visit"),
    ]:
        service.act_on_scored_response(followup, scored(response_id, score, touchpoint))
    service.claim_task(followup, ANA, task_of(followup, "c").id)
    resolved = service.claim_task(followup, BEN, task_of(followup, "d").id)
    service.change_status(followup, BEN, resolved.id, TaskStatus.RESOLVED, ResolutionCode.UNREACHABLE)

    assert listed(followup) == ["b", "a", "c"]  # high first, then the soonest due; d is resolved
    assert listed(followup, owner="u-ana") == ["c"]
    assert listed(followup, owner=OWNER_NONE) == ["b", "a"]
    assert listed(followup, owner="me") == ["c"]
    assert listed(followup, touchpoint="support_call", priority=TaskPriority.NORMAL) == ["c"]
    assert listed(followup, statuses=frozenset({TaskStatus.RESOLVED})) == ["d"]
    assert listed(followup, sort=TaskSort.SCORE) == ["b", "c", "a"]
    assert listed(followup, sort=TaskSort.SCORE, descending=True) == ["a", "c", "b"]
    assert listed(followup, statuses=frozenset(TaskStatus), sort=TaskSort.CREATED_AT) == ["d", "c", "b", "a"]
    page = service.list_tasks(followup, TaskQuery(sort=TaskSort.SCORE, page=2, page_size=2))
    assert ([task.response_id for task in page.items], page.total) == (["a"], 3)


def test_overdue_is_computed_in_sql_from_the_due_time_and_the_status(followup, monkeypatch):
    service.act_on_scored_response(followup, scored("late", 2))
    service.act_on_scored_response(followup, scored("in-time", 6))
    service.act_on_scored_response(followup, scored("late-resolved", 2))
    task = service.claim_task(followup, ANA, task_of(followup, "late-resolved").id)
    service.change_status(followup, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED)
    in_30_hours = utcnow() + timedelta(hours=30)
    monkeypatch.setattr(service, "utcnow", lambda: in_30_hours)

    everything = frozenset(TaskStatus)
    assert listed(followup, statuses=everything, overdue=True) == ["late"]
    assert sorted(listed(followup, statuses=everything, overdue=False)) == ["in-time", "late-resolved"]


def test_task_carries_contact_details_properties_and_its_timeline(followup):
    service.act_on_scored_response(followup, scored("r-1", 3))
    task = service.claim_task(followup, ANA, task_of(followup, "r-1").id)
    service.add_note(followup, ANA, task.id, "Sesli mesaj bıraktım")

    found = service.get_task(followup, task.id)

    assert (found.customer_name, found.customer_email, found.customer_phone) == (
        "Ayşe Demir",
        "ayse@example.com",
        "+905555550100",
    )
    assert found.properties == {"order_id": "A-1001", "amount": 129.5}
    assert [(entry.kind, entry.body) for entry in found.timeline] == [
        ("created", None),
        ("claimed", None),
        ("note_added", "Sesli mesaj bıraktım"),
    ]


def test_of_two_simultaneous_claims_exactly_one_wins(followup, monkeypatch):
    service.act_on_scored_response(followup, scored("r-1", 2))
    task_id = task_of(followup, "r-1").id
    decide = domain.claimed_status

    def slow_decision(*args):
        # Both claims have read the task before either decides: without a row lock both would win.
        time.sleep(0.3)
        return decide(*args)

    monkeypatch.setattr(domain, "claimed_status", slow_decision)
    start = threading.Barrier(2)

    def claim(actor):
        start.wait()
        try:
            return service.claim_task(followup, actor, task_id).owner_id
        except ConflictError as conflict:
            return conflict

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(claim, [ANA, BEN]))

    winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
    [loser] = [outcome for outcome in outcomes if isinstance(outcome, ConflictError)]
    assert len(winners) == 1 and loser.status == 409
    task = task_of(followup, "r-1")
    assert task.owner_id == winners[0] and task.status == TaskStatus.IN_PROGRESS
    with followup.unit_of_work() as uow:
        assert [entry.kind for entry in uow.tasks.with_timeline(task_id).timeline] == ["created", "claimed"]


def test_round_robin_is_fair_when_several_workers_open_tasks_at_once(followup, monkeypatch):
    members = [StaffMember(f"u-{n}", f"Agent {n}") for n in range(3)]
    team = service.create_team(followup, MAYA, "Care", ["support_call"], members)
    pick = domain.next_in_rotation

    def slow_pick(*args):
        # Every worker has read the team before any commits: a turn counted in Python would repeat.
        time.sleep(0.05)
        return pick(*args)

    monkeypatch.setattr(domain, "next_in_rotation", slow_pick)
    start = threading.Barrier(12)

    def consume(event):
        start.wait()
        service.act_on_scored_response(followup, event)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(consume, [scored(f"r-{n}", 2) for n in range(12)]))

    owners = Counter(task_of(followup, f"r-{n}").owner_id for n in range(12))
    assert owners == {"u-0": 4, "u-1": 4, "u-2": 4}
    [stored] = service.list_teams(followup)
    assert stored.id == team.id and stored.turns == 12


def test_two_teams_claiming_one_touchpoint_at_once_give_one_team_and_a_conflict(followup):
    start = threading.Barrier(2)

    def create(name):
        start.wait()
        try:
            return service.create_team(followup, MAYA, name, ["purchase"]).name
        except ConflictError as conflict:
            return conflict

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(create, ["Sales", "Shop"]))

    assert sum(isinstance(outcome, ConflictError) for outcome in outcomes) == 1
    assert [team.name for team in service.list_teams(followup)] == [o for o in outcomes if isinstance(o, str)]


def test_members_who_stay_keep_their_rows_when_the_team_changes(followup):
    ana, ben, cem = (StaffMember(f"u-{name}", name) for name in ("ana", "ben", "cem"))
    team = service.create_team(followup, MAYA, "Care", ["support_call"], [ana, ben])

    service.set_team_members(followup, MAYA, team.id, [cem, StaffMember("u-ana", "Ana L.")])

    [stored] = service.list_teams(followup)
    assert [(m.user_id, m.user_name, m.position) for m in stored.members] == [
        ("u-cem", "cem", 0),
        ("u-ana", "Ana L.", 1),
    ]


def test_api_answers_a_page_with_its_total_and_refuses_text_postgresql_cannot_store(followup):
    for n in range(3):
        service.act_on_scored_response(followup, scored(f"r-{n}", 2))
    client = staff_client(create_app(followup), followup.identity, Role.AGENT)
    response = client.get("/v1/tasks?page=2&page_size=2&sort=created_at&order=asc")
    task_id = response.get_json()[0]["id"]
    refused = client.post(f"/v1/tasks/{task_id}/notes", json={"body": "nul \u0000 byte"})

    assert response.status_code == 200 and response.headers["X-Total-Count"] == "3"
    assert [task["response_id"] for task in response.get_json()] == ["r-2"]
    assert refused.status_code == 422
