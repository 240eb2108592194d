"""The unit of work's contract, on the in-memory implementation every service's fake builds on."""

from __future__ import annotations

import pytest

from shared.events import InvalidEvent
from shared.unit_of_work import Conflict, InMemoryUnitOfWork
from tests.unit.shared.test_events import SUBMITTED


def test_emitted_event_is_kept_only_when_the_block_commits():
    uow = InMemoryUnitOfWork("survey")
    with uow:
        uow.emit("response.submitted", SUBMITTED)
    with pytest.raises(RuntimeError), uow:
        uow.emit("response.submitted", {**SUBMITTED, "response_id": "r2"})
        raise RuntimeError("the use case failed after emitting")

    assert [event["response_id"] for event in uow.emitted("response.submitted")] == ["r1"]
    assert uow.commits == 1


def test_a_service_cannot_emit_another_services_event():
    uow = InMemoryUnitOfWork("dispatch")
    with pytest.raises(ValueError, match="only survey"), uow:
        uow.emit("response.submitted", SUBMITTED)


def test_an_event_that_breaks_its_contract_is_never_stored():
    uow = InMemoryUnitOfWork("survey")
    with pytest.raises(InvalidEvent), uow:
        uow.emit("response.submitted", {**SUBMITTED, "score": 11})
    assert uow.events == []


def test_after_commit_actions_run_after_the_commit_and_not_after_a_rollback():
    uow = InMemoryUnitOfWork("survey")
    seen = []
    with uow:
        uow.after_commit(lambda: seen.append(uow.commits))
    with pytest.raises(RuntimeError), uow:
        uow.after_commit(lambda: seen.append("rolled back"))
        raise RuntimeError
    assert seen == [1]


def test_first_consumption_is_true_once_per_consumer_and_forgotten_on_rollback():
    uow = InMemoryUnitOfWork("followup")
    with pytest.raises(RuntimeError), uow:
        assert uow.first_consumption("e1", "act")
        raise RuntimeError
    with uow:
        assert uow.first_consumption("e1", "act")
        assert not uow.first_consumption("e1", "act")
        assert uow.first_consumption("e1", "another_consumer")
    with uow:
        assert not uow.first_consumption("e1", "act")


class Rows:
    def __init__(self) -> None:
        self.rows: dict[str, str] = {}


def test_rows_a_failed_block_added_are_gone_and_committed_ones_stay():
    uow, table = InMemoryUnitOfWork("survey"), Rows()
    uow.repositories = [table]
    with uow:
        table.rows["kept"] = "committed"
    with pytest.raises(RuntimeError), uow:
        table.rows["dropped"] = "rolled back"
        raise RuntimeError

    assert table.rows == {"kept": "committed"}


def test_a_commit_made_to_fail_raises_conflict_after_what_committed_meanwhile():
    uow, table, meanwhile = InMemoryUnitOfWork("survey"), Rows(), []
    uow.repositories = [table]
    uow.fail_next_commit_with_conflict(lambda: meanwhile.append("other transaction"))
    with pytest.raises(Conflict), uow:
        table.rows["mine"] = "lost"
        uow.emit("response.submitted", SUBMITTED)

    assert meanwhile == ["other transaction"] and table.rows == {} and uow.events == []
    with uow:  # the next commit goes through
        table.rows["mine"] = "saved"
    assert table.rows == {"mine": "saved"}
