"""The intake's memory of the events stored or found stored a moment ago: bounded in size and age, shared by
the processes of one server, so a CRM's retry is answered as a duplicate without asking the database (and,
with the very bytes of the body stored, without validating it again), and nothing is kept long."""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest

from services.survey import unit_of_work
from services.survey.unit_of_work import RecentlyReceived, body_digest


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(unit_of_work.time, "monotonic", clock)
    return clock


BODY = body_digest(b'{"id":"evt-1"}')


def test_an_event_put_is_known_by_its_source_and_id(clock):
    recent = RecentlyReceived()
    recent.put("default", "evt-1", "id-1")
    assert recent.get("default", "evt-1") == "id-1"
    assert recent.get("shop", "evt-1") is None  # the same CRM id from another source is another event
    assert recent.get("default", "evt-2") is None
    assert recent.get("defaul", "tevt-1") is None  # the key is the pair, not the two run together


def test_a_retry_is_answered_without_validation_only_with_the_bytes_stored(clock):
    recent = RecentlyReceived()
    recent.put("default", "evt-1", "id-1", BODY)
    recent.put("default", "evt-2", "id-2")  # stored from a body whose validation asked the database
    assert recent.get_same_body("default", "evt-1", BODY) == "id-1"
    assert recent.get_same_body("default", "evt-1", body_digest(b'{"id": "evt-1"}')) is None
    assert recent.get_same_body("shop", "evt-1", BODY) is None
    assert recent.get_same_body("default", "evt-2", body_digest(b"")) is None
    assert recent.get_same_body("default", "evt-2", bytes(16)) is None
    assert recent.get("default", "evt-2") == "id-2"


def test_an_event_is_forgotten_once_its_age_is_over(clock):
    recent = RecentlyReceived(max_age=120.0)
    recent.put("default", "evt-1", "id-1", BODY)
    clock.now += 119.0
    assert recent.get("default", "evt-1") == "id-1"
    clock.now += 1.0
    assert recent.get("default", "evt-1") is None
    assert recent.get_same_body("default", "evt-1", BODY) is None
    assert len(recent) == 0


def test_the_oldest_events_of_a_bucket_go_when_it_is_full(clock):
    recent = RecentlyReceived(size=RecentlyReceived.WAYS)  # one bucket
    for number in range(RecentlyReceived.WAYS + 2):
        clock.now += 1.0
        recent.put("default", f"evt-{number}", f"id-{number}")
    assert [recent.get("default", f"evt-{number}") for number in range(RecentlyReceived.WAYS + 2)] == [
        None,
        None,
        *(f"id-{number}" for number in range(2, RecentlyReceived.WAYS + 2)),
    ]
    assert len(recent) == RecentlyReceived.WAYS


def test_an_event_seen_again_starts_its_age_anew(clock):
    recent = RecentlyReceived(size=2, max_age=10.0)
    assert recent.size == RecentlyReceived.WAYS  # a whole bucket
    recent.put("default", "evt-1", "id-1")
    clock.now += 5.0
    for number in range(2, RecentlyReceived.WAYS + 1):
        recent.put("default", f"evt-{number}", f"id-{number}")
        clock.now += 0.1
    recent.put("default", "evt-1", "id-1")  # found stored again: now the newest
    clock.now += 6.0
    assert recent.get("default", "evt-1") == "id-1"
    assert recent.get("default", "evt-2") == "id-2"
    recent.put("default", "evt-new", "id-new")
    assert recent.get("default", "evt-2") is None and recent.get("default", "evt-1") == "id-1"


def test_memory_is_bounded_whatever_is_put():
    recent = RecentlyReceived(size=64)
    for number in range(10_000):
        recent.put("default", f"evt-{number}", str(uuid.uuid4()), body_digest(str(number).encode()))
    assert len(recent) <= 64
    assert len(recent._table) == 64 * RecentlyReceived.SLOT.size  # 96 bytes an event, fixed at creation


def test_an_id_the_table_cannot_hold_is_not_remembered(clock):
    recent = RecentlyReceived()
    recent.put("default", "evt-1", "x" * 48)
    assert recent.get("default", "evt-1") is None


def test_a_torn_slot_is_no_answer(clock):
    recent = RecentlyReceived(size=RecentlyReceived.WAYS)
    recent.put("default", "evt-1", "id-1", BODY)
    table = recent._table
    # Another writer's bytes half-way into the slot (its id): the slot's check fails.
    offset = next(o for o in range(0, len(table), 96) if table[o : o + 16] != bytes(16))
    table[offset + 41 : offset + 45] = b"id-9"
    assert recent.get("default", "evt-1") is None
    assert recent.get_same_body("default", "evt-1", BODY) is None


def _put_in_child(name: str) -> None:
    RecentlyReceived(size=256, shared_name=name).put("default", "evt-child", "id-child", BODY)


def test_processes_of_one_server_share_it_and_the_last_one_removes_it():
    name = f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    recent = RecentlyReceived(size=256, shared_name=name)
    assert recent.path is not None and os.path.exists(recent.path)
    child = multiprocessing.get_context("spawn").Process(target=_put_in_child, args=(name,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert recent.get_same_body("default", "evt-child", BODY) == "id-child"  # put by the other process
    assert os.path.exists(recent.path)  # the child let go of it, this process still holds it
    other = RecentlyReceived(size=256, shared_name=f"{name}-other")  # another server or database
    assert other.get("default", "evt-child") is None
    path = recent.path
    recent.close()
    assert not os.path.exists(path)
    other.close()
    assert RecentlyReceived(size=256, shared_name=name).get("default", "evt-child") is None  # anew


def test_without_a_place_to_share_it_a_process_keeps_its_own(monkeypatch, tmp_path):
    missing = str(tmp_path / "missing")
    monkeypatch.setattr(unit_of_work, "_SHARED_DIRECTORY", missing)
    monkeypatch.setattr(unit_of_work.tempfile, "gettempdir", lambda: missing)
    recent = RecentlyReceived(size=64, shared_name="unreachable")
    assert recent.path is None
    recent.put("default", "evt-1", "id-1", BODY)
    assert recent.get_same_body("default", "evt-1", BODY) == "id-1"


def test_a_torn_slot_of_a_full_bucket_is_taken_before_the_oldest(clock):
    recent = RecentlyReceived(size=RecentlyReceived.WAYS)  # one bucket
    for number in range(RecentlyReceived.WAYS):
        clock.now += 1.0
        recent.put("default", f"evt-{number}", f"id-{number}")
    table = recent._table
    # The newest event's slot, torn: the next event takes it, and the oldest stays.
    torn = next(o for o in range(0, len(table), 96) if recent._valid(table, o)[3] == "id-3")
    table[torn + 41 : torn + 45] = b"id-9"
    recent.put("default", "evt-new", "id-new")
    assert recent.get("default", "evt-new") == "id-new" and recent.get("default", "evt-0") == "id-0"
    # A key already in the bucket keeps its own slot, whatever is torn or older.
    recent.put("default", "evt-1", "id-1")
    assert [recent.get("default", f"evt-{number}") for number in range(3)] == ["id-0", "id-1", "id-2"]
