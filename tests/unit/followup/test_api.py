"""The followup HTTP API on the in-memory unit of work: payloads, status codes and problem+json errors.

Requests are signed in by the access guard through a fake identity store (``tests.fakes.bearer``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.followup import service
from services.followup.app import create_app
from shared.clock import utcnow
from tests.fakes import bearer

from .support import ANA, BEN, MAYA, scored, the_task

PROBLEM = "application/problem+json"


@pytest.fixture
def client(runtime):
    """Requests come from a test robot (an admin's API key) unless a test names someone else."""
    client = create_app(runtime).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer()["Authorization"]
    return client


def as_(principal) -> dict[str, str]:
    return bearer(principal)


@pytest.fixture
def task_id(runtime, uow) -> str:
    service.act_on_scored_response(runtime, scored(2, comment="Nobody called", sentiment=None))
    return the_task(uow).id


def test_queue_is_a_json_list_of_the_open_tasks_with_the_total_in_a_header(client, runtime, uow):
    for n in range(3):
        service.act_on_scored_response(runtime, scored(2 + n, response_id=f"r-{n}"))
    the_task(uow, "r-0").due_at = utcnow() - timedelta(hours=1)

    response = client.get("/v1/tasks?page_size=2")

    assert response.status_code == 200 and response.headers["X-Total-Count"] == "3"
    body = response.get_json()
    assert [task["response_id"] for task in body] == ["r-0", "r-1"]
    first = body[0]
    assert (first["customer_name"], first["customer_email"], first["customer_phone"]) == (
        "Jane Doe",
        "jane@example.com",
        "+15555550100",
    )
    assert first["properties"] == {"order_id": "A-1001", "amount": 129.5}
    assert (first["status"], first["owner_id"], first["overdue"]) == ("open", None, True)
    assert body[1]["overdue"] is False


def test_queue_filters_and_sorts_by_query_arguments(client, runtime, uow):
    for n in range(3):
        service.act_on_scored_response(runtime, scored(2 + n, response_id=f"r-{n}"))
    service.claim_task(runtime, ANA, the_task(uow, "r-1").id)

    mine = client.get("/v1/tasks?owner=me", headers=as_(ANA)).get_json()
    by_score = client.get("/v1/tasks?sort=score&order=desc&status=open&status=in_progress").get_json()
    in_progress = client.get("/v1/tasks?status=in_progress").get_json()

    assert [task["response_id"] for task in mine] == ["r-1"]
    assert [task["response_id"] for task in by_score] == ["r-2", "r-1", "r-0"]
    assert [task["response_id"] for task in in_progress] == ["r-1"]


@pytest.mark.parametrize(
    "query", ["limit=10", "page_size=0", "status=lost", "sort=mood", "order=up", "overdue=maybe", "owner=%00"]
)
def test_bad_or_unknown_query_argument_is_refused_with_field_errors(client, query):
    response = client.get(f"/v1/tasks?{query}")

    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert response.get_json()["errors"]


def test_task_comes_with_its_timeline(client, task_id):
    client.post(f"/v1/tasks/{task_id}/claim", headers=as_(ANA))
    client.post(f"/v1/tasks/{task_id}/notes", json={"body": "Çağrı bekliyor"}, headers=as_(ANA))

    body = client.get(f"/v1/tasks/{task_id}").get_json()

    assert body["comment"] == "Nobody called" and body["status"] == "in_progress"
    assert [(entry["kind"], entry["actor_name"]) for entry in body["timeline"]] == [
        ("created", None),
        ("claimed", "Ana Lima"),
        ("note_added", "Ana Lima"),
    ]
    assert body["timeline"][-1]["body"] == "Çağrı bekliyor"


def test_unknown_task_is_a_404_problem(client):
    response = client.get("/v1/tasks/nope")

    assert response.status_code == 404 and response.mimetype == PROBLEM


def test_second_claim_is_a_409_problem_naming_who_has_the_task(client, task_id):
    first = client.post(f"/v1/tasks/{task_id}/claim", headers=as_(ANA))
    second = client.post(f"/v1/tasks/{task_id}/claim", headers=as_(BEN))

    assert first.status_code == 200 and first.get_json()["owner_id"] == "u-ana"
    assert second.status_code == 409 and second.mimetype == PROBLEM
    assert second.get_json()["detail"] == "Ana Lima has this task already."


def test_action_without_a_principal_is_a_401_problem(client, task_id):
    response = client.post(f"/v1/tasks/{task_id}/claim", headers={"Authorization": ""})

    assert response.status_code == 401 and response.mimetype == PROBLEM


def test_agent_assigning_someone_else_is_a_403_problem(client, task_id):
    refused = client.post(
        f"/v1/tasks/{task_id}/assign", json={"user_id": "u-ben", "user_name": "Ben"}, headers=as_(ANA)
    )
    assigned = client.post(
        f"/v1/tasks/{task_id}/assign", json={"user_id": "u-ben", "user_name": "Ben"}, headers=as_(MAYA)
    )

    assert refused.status_code == 403 and refused.mimetype == PROBLEM
    assert assigned.status_code == 200 and assigned.get_json()["owner_name"] == "Ben"


def test_status_change_resolves_with_a_code_and_refuses_what_the_state_machine_forbids(client, task_id):
    forbidden = client.post(f"/v1/tasks/{task_id}/status", json={"status": "closed"}, headers=as_(MAYA))
    client.post(f"/v1/tasks/{task_id}/claim", headers=as_(ANA))
    no_code = client.post(f"/v1/tasks/{task_id}/status", json={"status": "resolved"}, headers=as_(ANA))
    resolved = client.post(
        f"/v1/tasks/{task_id}/status",
        json={"status": "resolved", "resolution_code": "contacted_resolved", "note": "Refunded"},
        headers=as_(ANA),
    )

    assert forbidden.status_code == 409 and forbidden.mimetype == PROBLEM
    assert forbidden.get_json()["detail"] == "An open task cannot become closed."
    assert no_code.status_code == 400 and "resolution_code" in no_code.get_json()["errors"]
    assert resolved.status_code == 200
    body = resolved.get_json()
    assert (body["status"], body["resolution_code"], body["resolution_note"]) == (
        "resolved",
        "contacted_resolved",
        "Refunded",
    )
    assert body["resolved_at"] is not None and body["overdue"] is False


def test_unknown_resolution_code_is_a_422(client, task_id):
    response = client.post(
        f"/v1/tasks/{task_id}/status",
        json={"status": "resolved", "resolution_code": "gave_up"},
        headers=as_(ANA),
    )

    assert response.status_code == 422 and "resolution_code" in response.get_json()["errors"]


def test_note_is_created_and_one_that_cannot_be_stored_is_refused(client, task_id):
    created = client.post(f"/v1/tasks/{task_id}/notes", json={"body": "Voicemail"}, headers=as_(BEN))
    nul = client.post(f"/v1/tasks/{task_id}/notes", json={"body": "a\u0000b"}, headers=as_(BEN))
    surrogate = client.post(
        f"/v1/tasks/{task_id}/notes",
        data='{"body": "\\ud800"}',
        content_type="application/json",
        headers=as_(BEN),
    )

    assert created.status_code == 201
    assert (created.get_json()["kind"], created.get_json()["actor_id"]) == ("note_added", "u-ben")
    assert nul.status_code == 422 and "body" in nul.get_json()["errors"]
    assert surrogate.status_code == 422 and "body" in surrogate.get_json()["errors"]


def test_manager_creates_a_team_and_sets_its_members(client):
    created = client.post(
        "/v1/teams",
        json={
            "name": "Care",
            "touchpoints": ["support_call"],
            "members": [{"user_id": "u-ana", "user_name": "Ana"}],
        },
        headers=as_(MAYA),
    )
    team_id = created.get_json()["id"]
    members = client.put(
        f"/v1/teams/{team_id}/members",
        json={
            "members": [{"user_id": "u-ben", "user_name": "Ben"}, {"user_id": "u-ana", "user_name": "Ana"}]
        },
        headers=as_(MAYA),
    )

    assert created.status_code == 201
    assert created.get_json()["touchpoints"] == ["support_call"]
    assert members.status_code == 200
    assert [member["user_id"] for member in members.get_json()["members"]] == ["u-ben", "u-ana"]
    [team] = client.get("/v1/teams").get_json()
    assert (team["name"], [member["user_name"] for member in team["members"]]) == ("Care", ["Ben", "Ana"])


def test_agent_creating_a_team_is_a_403_and_a_taken_touchpoint_a_409(client):
    agent = client.post("/v1/teams", json={"name": "Care", "touchpoints": []}, headers=as_(ANA))
    client.post("/v1/teams", json={"name": "Care", "touchpoints": ["purchase"]}, headers=as_(MAYA))
    taken = client.post("/v1/teams", json={"name": "Sales", "touchpoints": ["purchase"]}, headers=as_(MAYA))

    assert agent.status_code == 403 and agent.mimetype == PROBLEM
    assert taken.status_code == 409 and taken.get_json()["detail"] == "Team Care follows up purchase already."


def test_openapi_documents_the_total_header_and_the_conflicts(client):
    document = client.get("/openapi/followup.json").get_json()

    listing = document["paths"]["/v1/tasks"]["get"]
    assert "X-Total-Count" in listing["responses"]["200"]["headers"]
    assert {
        "status",
        "owner",
        "team",
        "touchpoint",
        "priority",
        "overdue",
        "sort",
        "order",
        "page",
        "page_size",
    } <= {parameter["name"] for parameter in listing["parameters"]}
    assert "409" in document["paths"]["/v1/tasks/{task_id}/claim"]["post"]["responses"]
    assert "403" in document["paths"]["/v1/tasks/{task_id}/assign"]["post"]["responses"]


def test_names_and_comments_come_back_as_written_not_as_escapes(client, runtime):
    customer = {"customer_id": "c-1", "external_id": "crm-1", "name": "Ayşe Yılmaz"}
    service.act_on_scored_response(runtime, scored(2, comment="Kargo çok geç geldi", customer=customer))

    raw = client.get("/v1/tasks").get_data()

    assert "Ayşe Yılmaz".encode() in raw and "Kargo çok geç geldi".encode() in raw
    assert b"\\u" not in raw
