"""The intake's memory of the events this process stored or found stored a moment ago: bounded in size and
age, so a CRM's retry is answered as a duplicate without asking the database, and nothing is kept long."""

from __future__ import annotations

import pytest

from services.survey import unit_of_work
from services.survey.unit_of_work import RecentlyReceived


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


def test_an_event_put_is_known_by_its_source_and_id(clock):
    recent = RecentlyReceived()
    recent.put("default", "evt-1", "id-1")
    assert recent.get("default", "evt-1") == "id-1"
    assert recent.get("shop", "evt-1") is None  # the same CRM id from another source is another event
    assert recent.get("default", "evt-2") is None


def test_an_event_is_forgotten_once_its_age_is_over(clock):
    recent = RecentlyReceived(max_age=120.0)
    recent.put("default", "evt-1", "id-1")
    clock.now += 119.0
    assert recent.get("default", "evt-1") == "id-1"
    clock.now += 1.0
    assert recent.get("default", "evt-1") is None
    recent.put("default", "evt-2", "id-2")  # putting drops what aged out
    assert list(recent._entries) == [("default", "evt-2")]


def test_the_oldest_events_go_when_it_is_full(clock):
    recent = RecentlyReceived(size=3)
    for number in range(5):
        clock.now += 1.0
        recent.put("default", f"evt-{number}", f"id-{number}")
    assert [recent.get("default", f"evt-{number}") for number in range(5)] == [
        None,
        None,
        "id-2",
        "id-3",
        "id-4",
    ]
    assert len(recent._entries) == 3


def test_an_event_seen_again_starts_its_age_anew(clock):
    recent = RecentlyReceived(size=2, max_age=10.0)
    recent.put("default", "evt-1", "id-1")
    clock.now += 5.0
    recent.put("default", "evt-2", "id-2")
    recent.put("default", "evt-1", "id-1")  # found stored again: now the newest
    clock.now += 6.0
    assert recent.get("default", "evt-1") == "id-1"
    assert recent.get("default", "evt-2") == "id-2"
    recent.put("default", "evt-3", "id-3")
    assert recent.get("default", "evt-2") is None and recent.get("default", "evt-1") == "id-1"
