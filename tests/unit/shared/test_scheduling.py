"""The clock loop: jobs on their intervals, and the relay at once when the clock is woken."""

from __future__ import annotations

import threading

from shared.scheduling import PeriodicJob, run_clock


class ScriptedWakeup:
    """Woken on the calls listed; stops the clock after the last one."""

    def __init__(self, woken: list[bool], stop: threading.Event) -> None:
        self.woken, self.stop = list(woken), stop

    def wait(self, timeout: float) -> bool:
        woken = self.woken.pop(0)
        if not self.woken:
            self.stop.set()
        return woken


def test_a_wakeup_runs_the_jobs_that_ask_for_it_before_their_interval():
    relayed, pruned = [], []
    relay = PeriodicJob("outbox", 3600.0, lambda: relayed.append(1) or 1, on_wakeup=True)
    prune = PeriodicJob("prune", 3600.0, lambda: pruned.append(1) or 1)
    stop = threading.Event()

    run_clock([relay, prune], stop, wakeup=ScriptedWakeup([False, True, False, True, False], stop))

    # Once at start, then after each of the two wake-ups; the hourly job only at start.
    assert len(relayed) == 3
    assert len(pruned) == 1
