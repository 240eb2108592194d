"""The fault harness, short: a few hundred events while Redis, a clock and a dispatch worker are SIGKILLed and
the provider answers 429s, 500s and late answers; every customer gets their invitation once.

The long run is `make faults` (tests/e2e/faults.py). Seed 34 kills Redis (restarted empty) after the 106th
event, survey's clock after the 257th and dispatch's worker after the 272nd, while it sends, and spoils five
SendGrid and Twilio calls.
"""

from __future__ import annotations

import pytest

from tests.e2e.faults import Plan, run

pytestmark = pytest.mark.e2e


def test_no_accepted_event_is_lost_or_sent_twice_under_kills_and_provider_faults(tmp_path):
    plan = Plan(events=300, kills=3, seed=34, quiet_timeout=90)
    victims = [details["victim"] for _, action, details in plan.schedule() if action == "kill"]
    assert victims == ["redis", "survey-clock", "dispatch-worker"]  # what the seed stands for

    report = run(plan, tmp_path)

    print("\n".join(report.lines()))
    assert report.accepted == plan.events and report.invitations == plan.events
    assert report.lost == []
    assert report.duplicated == []
    assert report.quiet_after is not None
    assert report.provider_calls == plan.events
