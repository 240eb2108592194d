"""The clock hears committed events at once: in-process after a unit of work's commit, across processes
through the outbox table's trigger and PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import pytest

from shared.outbox import outbox_channel
from shared.scheduling import COMMITTED_EVENTS, PostgresWakeup
from tests.conftest import make_settings, migrated_service
from tests.unit.shared.test_events import SUBMITTED

pytestmark = pytest.mark.integration


def emit_response_submitted(runtime) -> None:
    with runtime.unit_of_work() as uow:
        uow.emit("response.submitted", SUBMITTED)


def test_committed_events_wake_a_listening_clock_in_another_process(postgres_url):
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        wakeup = PostgresWakeup(runtime.database.dsn, [outbox_channel("survey")])
        try:
            assert wakeup.wait(0.1)  # just connected: it looks once, for what it could not hear
            assert not wakeup.wait(0.2)

            with pytest.raises(RuntimeError), runtime.unit_of_work() as uow:
                uow.emit("response.submitted", SUBMITTED)
                raise RuntimeError("rolled back: nothing to relay")
            assert not wakeup.wait(0.2)

            emit_response_submitted(runtime)
            assert wakeup.wait(5.0)
        finally:
            wakeup.close()


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_commit_that_emitted_events_wakes_the_clock_in_its_process(database, request):
    with migrated_service("survey", make_settings(request.getfixturevalue(database))) as runtime:
        COMMITTED_EVENTS.wait(0)  # forget wake-ups of earlier tests
        with runtime.unit_of_work():
            pass
        assert not COMMITTED_EVENTS.wait(0)

        emit_response_submitted(runtime)
        assert COMMITTED_EVENTS.wait(0)
