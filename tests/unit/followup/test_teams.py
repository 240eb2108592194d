"""Teams on the in-memory unit of work: who follows up which touchpoints, and in which order."""

from __future__ import annotations

import pytest

from services.followup import service
from services.followup.domain import StaffMember
from shared.http import ConflictError, DomainError, ForbiddenError, NotFoundError

from .support import ANA, MAYA, START, scored, the_task

ANA_MEMBER = StaffMember("u-ana", "Ana Lima")
BEN_MEMBER = StaffMember("u-ben", "Ben Okafor")
CEM_MEMBER = StaffMember("u-cem", "Cem Yılmaz")


def test_manager_creates_a_team_with_its_touchpoints_and_members(runtime, clock):
    team = service.create_team(
        runtime, MAYA, "Care", ["support_call", "site_visit"], [BEN_MEMBER, ANA_MEMBER]
    )

    assert team.name == "Care" and team.created_at == START and team.turns == 0
    assert [touchpoint.touchpoint for touchpoint in team.touchpoints] == ["site_visit", "support_call"]
    assert [(member.user_id, member.user_name, member.position) for member in team.members] == [
        ("u-ben", "Ben Okafor", 0),
        ("u-ana", "Ana Lima", 1),
    ]
    assert service.list_teams(runtime) == [team]


def test_agent_creates_no_team(runtime, clock):
    with pytest.raises(ForbiddenError):
        service.create_team(runtime, ANA, "Care", ["support_call"])
    assert service.list_teams(runtime) == []


def test_second_team_with_the_same_name_is_a_conflict(runtime, clock):
    service.create_team(runtime, MAYA, "Care", ["support_call"])

    with pytest.raises(ConflictError, match="a team named Care"):
        service.create_team(runtime, MAYA, "Care", ["purchase"])


def test_touchpoint_another_team_follows_up_is_a_conflict_naming_that_team(runtime, clock):
    service.create_team(runtime, MAYA, "Care", ["support_call"])

    with pytest.raises(ConflictError, match="Team Care follows up support_call already"):
        service.create_team(runtime, MAYA, "Sales", ["purchase", "support_call"])
    assert [team.name for team in service.list_teams(runtime)] == ["Care"]


def test_member_listed_twice_is_refused(runtime, clock):
    with pytest.raises(DomainError) as refused:
        service.create_team(runtime, MAYA, "Care", ["support_call"], [ANA_MEMBER, ANA_MEMBER])
    assert "members" in refused.value.errors


def test_teams_are_listed_by_name(runtime, clock):
    for name in ("Sales", "Care", "Web"):
        service.create_team(runtime, MAYA, name, [])

    assert [team.name for team in service.list_teams(runtime)] == ["Care", "Sales", "Web"]


def test_new_members_take_turns_in_their_new_order(runtime, uow, clock):
    team = service.create_team(runtime, MAYA, "Care", ["support_call"], [ANA_MEMBER])
    service.act_on_scored_response(runtime, scored(2, response_id="r-0"))  # Ana's, turn 1

    team = service.set_team_members(
        runtime, MAYA, team.id, [CEM_MEMBER, StaffMember("u-ana", "Ana L."), BEN_MEMBER]
    )
    for n in (1, 2, 3):
        service.act_on_scored_response(runtime, scored(2, response_id=f"r-{n}"))

    assert [(member.user_id, member.user_name) for member in team.members] == [
        ("u-cem", "Cem Yılmaz"),
        ("u-ana", "Ana L."),
        ("u-ben", "Ben Okafor"),
    ]
    # Turns 2, 3 and 4 of three members.
    assert [the_task(uow, f"r-{n}").owner_id for n in (1, 2, 3)] == ["u-ana", "u-ben", "u-cem"]


def test_only_a_manager_changes_a_teams_members(runtime, clock):
    team = service.create_team(runtime, MAYA, "Care", ["support_call"], [ANA_MEMBER])

    with pytest.raises(ForbiddenError):
        service.set_team_members(runtime, ANA, team.id, [])
    assert [member.user_id for member in team.members] == ["u-ana"]


def test_members_of_an_unknown_team_are_not_found(runtime, clock):
    with pytest.raises(NotFoundError):
        service.set_team_members(runtime, MAYA, "nope", [ANA_MEMBER])
