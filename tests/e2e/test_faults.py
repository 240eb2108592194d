"""The fault harness, short: a few hundred events while Redis, a clock and a dispatch worker are SIGKILLed and
Twilio answers 429s, 500s and late answers; every customer gets their invitation once.

The long run is `make faults` (tests/e2e/faults.py), by email and SMS. This one sends SMS only, so that its
assertion is exact: Twilio can be asked whether it took a message, SendGrid cannot. An email whose worker
is killed in the instant between noting its call and the request leaving is shown `unknown`, never sent
(`make faults` counts it as lost; see the README's "Fault harness"). Seed 701 kills dispatch's worker after
the 145th event, while it sends, Redis (restarted empty) after the 169th and survey's clock after the 284th.
"""

from __future__ import annotations

import pytest

from tests.e2e.faults import Plan, run

pytestmark = pytest.mark.e2e


def test_no_accepted_event_is_lost_or_sent_twice_under_kills_and_provider_faults(tmp_path):
    plan = Plan(events=300, kills=3, seed=701, sms_share=1.0, quiet_timeout=90)
    schedule = plan.schedule()
    assert [details["victim"] for _, action, details in schedule if action == "kill"] == [
        "dispatch-worker",
        "redis",
        "survey-clock",
    ]  # what the seed stands for
    # Its faults at SendGrid are never used: nothing is sent by email.
    assert {details["provider"] for _, action, details in schedule if action == "fault"} >= {"twilio"}

    report = run(plan, tmp_path)

    print("\n".join(report.lines()))
    assert report.accepted == plan.events and report.invitations == plan.events
    assert report.lost == []
    assert report.duplicated == []
    assert report.quiet_after is not None
    assert report.provider_calls == plan.events
