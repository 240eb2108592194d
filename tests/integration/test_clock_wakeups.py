"""The clock hears committed events at once: in-process after a unit of work's commit, across processes
through the outbox table's trigger and PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from closeloop.services import SERVICES
from services.survey import service
from services.survey.schemas import CrmEventSchema
from shared.outbox import outbox_channel
from shared.scheduling import COMMITTED_EVENTS, PostgresWakeup
from tests.conftest import crm_event, make_settings, migrated_service
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


def accept_event(runtime, event_id: str) -> None:
    service.accept_crm_event(runtime, CrmEventSchema().load(crm_event(event_id)))


def test_a_received_crm_event_wakes_the_clock_in_another_process_and_a_duplicate_does_not(postgres_url):
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        channels = [outbox_channel("survey"), *SERVICES["survey"].wake_channels]
        wakeup = PostgresWakeup(runtime.database.dsn, channels)
        try:
            assert wakeup.wait(0.1)
            assert not wakeup.wait(0.2)

            accept_event(runtime, "order-1")
            assert wakeup.wait(5.0) == {SERVICES["survey"].wake_channels[0]}  # the decider's, not the relay's
            assert not wakeup.wait(0.2)

            emit_response_submitted(runtime)
            assert wakeup.wait(5.0) == {outbox_channel("survey")}

            accept_event(runtime, "order-1")  # stored before: nothing new to decide
            assert not wakeup.wait(0.5)
        finally:
            wakeup.close()


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_received_crm_event_wakes_the_clock_in_its_process(database, request, monkeypatch):
    # Counted where it is set, not by waiting on it: a clock of the browser tests' embedded system, alive in
    # this process for the whole session, may take the wake-up first.
    wakes: list[None] = []
    set_wakeup = COMMITTED_EVENTS.set
    monkeypatch.setattr(COMMITTED_EVENTS, "set", lambda: (wakes.append(None), set_wakeup())[1])
    with migrated_service("survey", make_settings(request.getfixturevalue(database))) as runtime:
        wakes.clear()
        accept_event(runtime, "order-1")
        assert len(wakes) == 1

        accept_event(runtime, "order-1")
        assert len(wakes) == 1


def test_the_intakes_transaction_does_not_notify_its_process_does_after_the_commit(postgres_url):
    # A NOTIFY inside the intake's transaction would queue its commit behind every notifying commit of the
    # server (a lock held until each is on disk): the intake's process notifies after its commits instead.
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        with runtime.database.engine.connect() as connection:
            triggers = connection.exec_driver_sql(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = 'survey_crm_events'::regclass AND NOT tgisinternal"
            ).scalars()
            assert list(triggers) == []
        wakeup = PostgresWakeup(runtime.database.dsn, SERVICES["survey"].wake_channels)
        try:
            assert wakeup.wait(0.1)
            for number in range(20):  # a burst: each event is followed by a notification, some shared
                accept_event(runtime, f"burst-{number}")
            assert wakeup.wait(5.0)
        finally:
            wakeup.close()


def test_the_waker_notifies_again_after_its_connection_was_lost(postgres_url):
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        channel = SERVICES["survey"].wake_channels[0]
        wakeup = PostgresWakeup(runtime.database.dsn, [channel])
        try:
            assert wakeup.wait(0.1)
            accept_event(runtime, "first")
            assert wakeup.wait(5.0)
            with runtime.database.engine.connect() as connection:  # as a server restart would end it
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE :waker AND pid <> pg_backend_pid()"
                    ),
                    {"waker": "SELECT pg_notify%"},
                )
            accept_event(runtime, "lost")  # its notification fails, and is sent again on a new connection
            accept_event(runtime, "after")
            assert wakeup.wait(10.0)
        finally:
            wakeup.close()
        thread = runtime.database.waker(channel)._thread
    assert thread is not None and not thread.is_alive()  # stopped with the database
