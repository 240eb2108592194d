"""The success team's pages on the in-memory unit of work: what each page lists and shows, and how its forms
answer, successes (303 back to the task) and refusals (the task page with the use case's status and message).

Requests are signed in by the access guard through the fake identity store (``tests.fakes.bearer``).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from services.followup import service
from services.followup.app import create_app
from services.followup.domain import ResolutionCode, StaffMember, TaskStatus
from shared.clock import utcnow
from tests.fakes import bearer

from .support import ANA, BEN, MAYA, NEGATIVE, scored, the_task


@pytest.fixture
def client(runtime):
    return create_app(runtime).test_client()


def get(client, url, who=ANA):
    return client.get(url, headers=bearer(who))


def post(client, url, who=ANA, **form):
    return client.post(url, data=form, headers=bearer(who))


def text(response) -> str:
    """The page as a person reads it: entities such as &#39; turned back into characters."""
    return html.unescape(response.get_data(as_text=True))


def customer(name: str, number: int = 1) -> dict:
    return {
        "customer_id": f"c-{number}",
        "external_id": f"crm-{number}",
        "name": name,
        "email": f"customer{number}@example.com",
        "phone": "+15555550100",
    }


def open_task(runtime, uow, response_id="r-1", name="Jane Doe", touchpoint="support_call", score=2, **extra):
    service.act_on_scored_response(
        runtime,
        scored(
            score,
            response_id=response_id,
            touchpoint=touchpoint,
            customer=customer(name, int(re.sub(r"\D", "", response_id) or 1)),
            **extra,
        ),
    )
    return the_task(uow, response_id)


def care_team(runtime, *members):
    return service.create_team(
        runtime, MAYA, "Customer care", ["support_call"], [StaffMember(m.id, m.name) for m in members]
    )


def rows(response) -> list[str]:
    return re.findall(r'<td class="customer">\s*<a href="[^"]+">([^<]+)</a>', text(response))


# --- Strangers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/tasks", "/tasks/team", "/tasks/unassigned", "/tasks/overdue", "/tasks/t-1"]
)
def test_a_stranger_opening_a_staff_page_is_sent_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_a_stranger_posting_a_form_is_sent_to_sign_in_and_changes_nothing(client, runtime, uow):
    task = open_task(runtime, uow)

    response = client.post(f"/tasks/{task.id}/claim")

    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
    assert task.owner_id is None


def test_the_stylesheet_is_served_without_signing_in(client):
    response = client.get("/static/followup/followup.css")

    assert response.status_code == 200 and response.mimetype == "text/css"


def test_the_staff_home_leads_to_my_tasks(client):
    response = get(client, "/")

    assert response.status_code == 303 and response.headers["Location"] == "/tasks"


def test_staff_pages_are_not_kept_in_the_browser_cache(client):
    assert get(client, "/tasks").headers["Cache-Control"] == "no-store"


# --- The queues -----------------------------------------------------------------------------------------


def test_my_tasks_lists_the_tasks_i_still_have_to_act_on_with_names_as_written(client, runtime, uow):
    mine = open_task(runtime, uow, "r-1", "Ayşe Demir")
    service.claim_task(runtime, ANA, mine.id)
    service.claim_task(runtime, BEN, open_task(runtime, uow, "r-2", "Ben's customer").id)
    done = open_task(runtime, uow, "r-3", "Resolved customer")
    service.claim_task(runtime, ANA, done.id)
    service.change_status(runtime, ANA, done.id, TaskStatus.RESOLVED, ResolutionCode.NOT_NEEDED)

    response = get(client, "/tasks")

    assert response.status_code == 200
    assert rows(response) == ["Ayşe Demir"]  # as written: not &#351; nor \u015f
    assert "In progress" in text(response) and "1 task" in text(response)


def test_my_tasks_filtered_by_resolved_shows_what_i_resolved(client, runtime, uow):
    done = open_task(runtime, uow, "r-1", "Resolved customer")
    service.claim_task(runtime, ANA, done.id)
    service.change_status(runtime, ANA, done.id, TaskStatus.RESOLVED, ResolutionCode.NOT_NEEDED)

    assert rows(get(client, "/tasks?status=resolved")) == ["Resolved customer"]


def test_the_team_queue_shows_the_tasks_of_my_team_only(client, runtime, uow):
    care_team(runtime, ANA)
    open_task(runtime, uow, "r-1", "Support caller", touchpoint="support_call")
    open_task(runtime, uow, "r-2", "Buyer", touchpoint="purchase")

    response = get(client, "/tasks/team")

    assert rows(response) == ["Support caller"]
    assert "My team's tasks" in text(response)


def test_an_agent_on_no_team_is_told_so_on_the_team_queue(client, runtime, uow):
    care_team(runtime, ANA)
    open_task(runtime, uow, "r-1", "Support caller")

    response = get(client, "/tasks/team", who=BEN)

    assert rows(response) == []
    assert "You are not on a team yet" in text(response)


def test_a_manager_sees_every_teams_tasks_and_can_pick_one_team(client, runtime, uow):
    team = care_team(runtime, ANA)
    open_task(runtime, uow, "r-1", "Support caller", touchpoint="support_call")
    open_task(runtime, uow, "r-2", "Buyer", touchpoint="purchase")

    everyone = get(client, "/tasks/team", who=MAYA)
    one_team = get(client, f"/tasks/team?team={team.id}", who=MAYA)

    assert sorted(rows(everyone)) == ["Buyer", "Support caller"]
    assert "All teams" in text(everyone)
    assert rows(one_team) == ["Support caller"]


def test_the_unassigned_queue_lists_only_tasks_nobody_owns(client, runtime, uow):
    open_task(runtime, uow, "r-1", "Nobody's customer")
    service.claim_task(runtime, BEN, open_task(runtime, uow, "r-2", "Ben's customer").id)

    assert rows(get(client, "/tasks/unassigned")) == ["Nobody's customer"]


def test_the_overdue_queue_lists_overdue_tasks_and_marks_them(client, runtime, uow):
    late = open_task(runtime, uow, "r-1", "Waiting customer")
    late.due_at = utcnow() - timedelta(hours=5)
    open_task(runtime, uow, "r-2", "Recent customer")

    response = get(client, "/tasks/overdue")

    assert rows(response) == ["Waiting customer"]
    page = response.get_data(as_text=True)
    assert '<tr class="overdue">' in page
    assert re.search(r'class="badge overdue">5 h overdue<', page)
    # The navigation counts them on every page.
    assert re.search(
        r'Overdue <span class="count alert">1</span>', get(client, "/tasks").get_data(as_text=True)
    )


def test_filter_links_keep_the_other_filters_and_start_again_at_page_one(client, runtime, uow):
    care_team(runtime)
    open_task(runtime, uow)

    page = text(get(client, "/tasks/unassigned?priority=high&page=2"))

    assert 'href="/tasks/unassigned?priority=high&touchpoint=support_call"' in page
    assert 'href="/tasks/unassigned?priority=high&status=open"' in page
    # The filters in force are marked; "Any" drops one.
    assert 'href="/tasks/unassigned?priority=high" aria-current="true">To do<' in page
    assert 'href="/tasks/unassigned?priority=high" aria-current="true">High<' in page
    assert 'href="/tasks/unassigned">Any<' in page


def test_a_long_queue_is_shown_a_page_at_a_time_with_links_between_pages(client, runtime, uow):
    for number in range(27):
        open_task(runtime, uow, f"r-{number}", f"Customer {number}")

    first = get(client, "/tasks/unassigned")
    second = get(client, "/tasks/unassigned?page=2")

    assert len(rows(first)) == 25 and len(rows(second)) == 2
    assert "Page 1 of 2" in text(first) and 'href="/tasks/unassigned?page=2" rel="next"' in text(first)
    assert 'href="/tasks/unassigned" rel="prev"' in text(second)
    assert set(rows(first)).isdisjoint(rows(second))


def test_an_unknown_filter_value_is_a_400_page_with_a_message_and_the_default_queue(client, runtime, uow):
    open_task(runtime, uow, "r-1", "Listed anyway")

    response = get(client, "/tasks/unassigned?priority=urgent")

    assert response.status_code == 400
    assert "Some filters in this address were not understood (priority)." in text(response)
    assert rows(response) == ["Listed anyway"]


# --- A task's page --------------------------------------------------------------------------------------


def test_the_task_page_shows_the_answer_contact_details_properties_and_timeline(client, runtime, uow):
    task = open_task(
        runtime, uow, "r-1", "Mehmet Yılmaz", comment="Teknisyen gelmedi, çok kızgınım", sentiment=NEGATIVE
    )

    response = get(client, f"/tasks/{task.id}")

    page = text(response)
    assert response.status_code == 200
    assert "<h1>Mehmet Yılmaz</h1>" in page
    assert "Teknisyen gelmedi, çok kızgınım" in page
    assert "Negative" in page and '<span class="phrase">hung</span>' in page
    assert 'href="mailto:customer1@example.com"' in page and 'href="tel:+15555550100"' in page
    assert "<dt>Order id</dt><dd>A-1001</dd>" in page and "<dt>Amount</dt><dd>129.5</dd>" in page
    assert '<h2 id="details-heading">Support call</h2>' in page
    assert "Opened the task for a detractor's answer." in page


def test_the_timeline_lists_notes_and_changes_oldest_first(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)
    service.add_note(runtime, ANA, task.id, "Called, no answer.")

    page = text(get(client, f"/tasks/{task.id}"))

    opened, claimed, noted = (
        page.index("Opened the task"),
        page.index("Claimed the task (Open → In progress)."),
        page.index("Called, no answer."),
    )
    assert opened < claimed < noted


def buttons(response) -> set[str]:
    """The task's buttons; signing out and adding a note are on every task page."""
    return set(re.findall(r"<button[^>]*>([^<]+)</button>", text(response))) - {"Sign out", "Add note"}


def test_the_task_page_offers_only_the_moves_the_state_machine_allows(client, runtime, uow):
    task = open_task(runtime, uow)

    unclaimed = buttons(get(client, f"/tasks/{task.id}"))
    service.claim_task(runtime, ANA, task.id)
    in_progress = buttons(get(client, f"/tasks/{task.id}"))
    service.change_status(runtime, ANA, task.id, TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED)
    resolved = buttons(get(client, f"/tasks/{task.id}"))

    assert unclaimed == {"Claim"}
    assert in_progress == {"Resolve task"}
    assert resolved == {"Close", "Reopen"}


def test_someone_elses_task_offers_no_status_change_to_an_agent(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, BEN, task.id)

    response = get(client, f"/tasks/{task.id}")

    assert buttons(response) == set()
    assert "Ben Okafor has this task." in text(response)


def test_a_manager_assigns_from_the_staff_list_and_an_agent_gets_no_assign_form(client, runtime, uow):
    task = open_task(runtime, uow)

    manager_page = get(client, f"/tasks/{task.id}", who=MAYA).get_data(as_text=True)
    agent_page = get(client, f"/tasks/{task.id}").get_data(as_text=True)

    options = re.findall(r'<option value="(u-[^"]+)"\s*>([^<]+)</option>', manager_page)
    assert options == [(ANA.id, "Ana Lima"), (BEN.id, "Ben Okafor"), (MAYA.id, "Maya Şahin")]
    assert 'name="user_id"' not in agent_page


def test_every_form_on_the_task_page_carries_the_csrf_token(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)

    page = get(client, f"/tasks/{task.id}", who=MAYA).get_data(as_text=True)

    assert page.count("<form") == page.count('name="csrf_token"') >= 4


def test_an_unknown_task_is_a_404_page(client):
    response = get(client, "/tasks/no-such-task")

    assert response.status_code == 404 and "There is no task no-such-task." in text(response)


# --- The task page's forms ------------------------------------------------------------------------------


def test_claiming_a_task_redirects_back_to_it_and_makes_it_mine(client, runtime, uow):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/claim")

    assert response.status_code == 303 and response.headers["Location"] == f"/tasks/{task.id}"
    assert (task.owner_id, task.status) == (ANA.id, TaskStatus.IN_PROGRESS)
    assert "You took this task." in text(get(client, response.headers["Location"]))


def test_claiming_a_task_someone_else_has_shows_the_409_conflict_on_the_task_page(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, BEN, task.id)

    response = post(client, f"/tasks/{task.id}/claim")

    assert response.status_code == 409
    assert '<p class="error" role="alert">Ben Okafor has this task already.</p>' in text(response)
    assert task.owner_id == BEN.id


def test_changing_the_status_of_someone_elses_task_shows_the_403_on_the_task_page(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, BEN, task.id)

    response = post(client, f"/tasks/{task.id}/status", status="resolved", resolution_code="not_needed")

    assert response.status_code == 403
    assert "Only the task's owner or a manager changes its status." in text(response)
    assert task.status == TaskStatus.IN_PROGRESS


def test_a_move_the_state_machine_forbids_shows_the_409_naming_it(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)

    response = post(client, f"/tasks/{task.id}/status", status="closed")

    assert response.status_code == 409 and "task cannot become closed" in text(response)


def test_resolving_without_a_resolution_code_is_a_400_that_keeps_the_typed_note(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)

    response = post(
        client, f"/tasks/{task.id}/status", status="resolved", resolution_code="", note="Called twice"
    )

    page = text(response)
    assert response.status_code == 400
    assert "resolving a task needs a resolution code" in page
    assert '<details class="resolve" open>' in page and ">Called twice</textarea>" in page
    assert task.status == TaskStatus.IN_PROGRESS


def test_an_unknown_resolution_code_is_a_400_naming_the_field(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)

    response = post(client, f"/tasks/{task.id}/status", status="resolved", resolution_code="fixed-it")

    assert response.status_code == 400 and "Resolution code:" in text(response)


def test_resolving_with_a_code_records_it_and_the_note_on_the_timeline(client, runtime, uow):
    task = open_task(runtime, uow)
    service.claim_task(runtime, ANA, task.id)

    response = post(
        client,
        f"/tasks/{task.id}/status",
        status="resolved",
        resolution_code="contacted_resolved",
        note="Refund sent; Jane is happy.",
    )

    assert response.status_code == 303
    assert (task.status, task.resolution_code) == (TaskStatus.RESOLVED, ResolutionCode.CONTACTED_RESOLVED)
    page = text(get(client, f"/tasks/{task.id}"))
    assert "The task is resolved now." in page
    assert "Status: In progress → Resolved. Resolution: Contacted, resolved." in page
    assert '<p class="note">Refund sent; Jane is happy.</p>' in page


def test_adding_a_note_puts_it_on_the_timeline(client, runtime, uow):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/notes", body="Left a voicemail, will try at 4 pm.")

    assert response.status_code == 303
    page = text(get(client, f"/tasks/{task.id}"))
    assert "Note added." in page and '<p class="note">Left a voicemail, will try at 4 pm.</p>' in page


@pytest.mark.parametrize("body", ["", "   "])
def test_a_blank_note_is_a_400_on_the_task_page(client, runtime, uow, body):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/notes", body=body)

    assert response.status_code == 400 and '<p class="error" role="alert">' in text(response)
    assert [entry.kind for entry in uow.timeline.of(task.id)] == ["created"]


def test_a_manager_assigns_a_task_to_someone_on_the_staff_by_their_stored_name(client, runtime, uow):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/assign", who=MAYA, user_id=BEN.id, user_name="Someone Else")

    assert response.status_code == 303
    assert (task.owner_id, task.owner_name) == (BEN.id, "Ben Okafor")
    assert "Assigned to Ben Okafor." in text(get(client, f"/tasks/{task.id}", who=MAYA))


def test_assigning_to_someone_not_on_the_staff_is_a_400(client, runtime, uow):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/assign", who=MAYA, user_id="u-stranger")

    assert response.status_code == 400 and "Pick someone on the staff" in text(response)
    assert task.owner_id is None


def test_an_agent_assigning_a_task_to_someone_else_gets_the_403_on_the_task_page(client, runtime, uow):
    task = open_task(runtime, uow)

    response = post(client, f"/tasks/{task.id}/assign", user_id=BEN.id)

    assert response.status_code == 403 and "Only a manager assigns a task to someone else." in text(response)


def test_a_form_posted_to_an_unknown_task_is_a_404_page(client):
    response = post(client, "/tasks/no-such-task/notes", body="Hello")

    assert response.status_code == 404
