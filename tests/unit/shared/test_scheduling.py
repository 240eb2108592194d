"""The clock loop: jobs on their intervals, and the relay at once when the clock is woken."""

from __future__ import annotations

import threading

from shared.scheduling import EVERY_CHANNEL, NOTHING_HEARD, PeriodicJob, run_clock


class ScriptedWakeup:
    """Hears on each call what is listed (True: it cannot tell what), and stops the clock after the last."""

    def __init__(self, heard: list[bool | frozenset[str]], stop: threading.Event) -> None:
        self.heard, self.stop = list(heard), stop
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> frozenset[str]:
        self.timeouts.append(timeout)
        heard = self.heard.pop(0)
        if not self.heard:
            self.stop.set()
        if isinstance(heard, bool):
            return EVERY_CHANNEL if heard else NOTHING_HEARD
        return heard


def test_a_wakeup_runs_the_jobs_that_ask_for_it_before_their_interval():
    relayed, pruned = [], []
    relay = PeriodicJob("outbox", 3600.0, lambda: relayed.append(1) or 1, on_wakeup=True)
    prune = PeriodicJob("prune", 3600.0, lambda: pruned.append(1) or 1)
    stop = threading.Event()

    run_clock([relay, prune], stop, wakeup=ScriptedWakeup([False, True, False, True, False], stop))

    # Once at start, then after each of the two wake-ups; the hourly job only at start.
    assert len(relayed) == 3
    assert len(pruned) == 1


def test_a_notification_wakes_only_the_jobs_of_its_channel():
    runs: dict[str, int] = {"relay": 0, "decide": 0}

    def job(name: str, channel: str) -> PeriodicJob:
        def count() -> int:
            runs[name] += 1
            return 0

        return PeriodicJob(name, 3600.0, count, on_wakeup=True, wake_channel=channel)

    stop = threading.Event()
    heard = [frozenset({"outbox"}), frozenset({"received"}), frozenset({"outbox", "received"}), True, False]
    run_clock([job("relay", "outbox"), job("decide", "received")], stop, wakeup=ScriptedWakeup(heard, stop))

    # At start; then the relay on its channel, the decider on its own, both on both, both when it cannot tell.
    assert runs == {"relay": 4, "decide": 4}


def test_a_job_that_did_a_whole_batch_runs_again_at_once_and_still_hears_wakeups():
    batches = [100, 100, 7]  # a backlog of 207, then nothing
    relayed: list[int] = []
    decide = PeriodicJob("decide", 3600.0, lambda: batches.pop(0) if batches else 0, batch=100)
    relay = PeriodicJob(
        "relay", 3600.0, lambda: relayed.append(1) or 0, on_wakeup=True, wake_channel="outbox"
    )
    stop = threading.Event()
    wakeup = ScriptedWakeup([frozenset({"outbox"}), NOTHING_HEARD, NOTHING_HEARD], stop)

    run_clock([decide, relay], stop, wakeup=wakeup)

    assert batches == []
    # Without waiting while the backlog lasted, yet the relay heard the outbox meanwhile.
    assert wakeup.timeouts == [0.0, 0.0, 0.1]
    assert len(relayed) == 2
