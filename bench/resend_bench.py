"""How many invitations a misbehaving provider gets twice: a blind retry beside dispatch's rule, same run.

    .venv/bin/python bench/resend_bench.py [--invitations 20]

The provider simulator answers after the client's timeout (scaled down: 1.2 s against 0.5 s, as 12 s against
10 s), or resets the connection after taking the message, or a worker dies mid-call (the message was taken,
the answer lost). Baseline: retry whatever did not answer (what dispatch did before). Dispatch's rule: a send
whose outcome is unknown is looked up at Twilio before any new send; an email (SendGrid has no look-up) is
marked unknown and not sent again. Also printed: what a look-up costs beside a send, against the simulator.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from closeloop.provider_simulator import SimulatorServer, create_simulator_app
from services.dispatch.providers import (
    DeliveryError,
    OutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
)
from services.dispatch.providers.sendgrid_email import SendGridEmailTransport
from services.dispatch.providers.twilio_sms import TwilioSmsTransport

TOKEN = "bench-token"
ACCOUNT = "AC" + "b" * 32
TIMEOUT, SLOW = 0.5, 1.2


def sms(n: int) -> OutgoingSms:
    return OutgoingSms(
        to=f"+1555{n:07d}", body=f"How likely are you to recommend us? Reply 0-10 ({n})", reference=f"d{n}"
    )


def email(n: int) -> OutgoingEmail:
    return OutgoingEmail(
        to_email=f"bench{n}@example.com",
        to_name=None,
        subject="How did we do?",
        html="<p>0-10</p>",
        text="0-10",
        reference=f"e{n}",
    )


def blind(error: Exception | None, send: Callable[[], object], _look_up: object) -> None:
    """Before: whatever did not answer was retried."""
    if error is not None and not isinstance(error, PermanentDeliveryError):
        send()


def looked_up(
    error: Exception | None, send: Callable[[], object], look_up: Callable[[], object] | None
) -> None:
    """Now: an unknown outcome is looked up first where the provider allows it, else left unknown."""
    if isinstance(error, OutcomeUnknownError):
        if look_up is not None and look_up() is None:
            send()
    elif isinstance(error, DeliveryError) and not isinstance(error, PermanentDeliveryError):
        send()


def attempt(send: Callable[[], object]) -> Exception | None:
    try:
        send()
    except DeliveryError as error:
        return error
    return None


def run(policy, simulator: SimulatorServer, count: int, fault: str) -> tuple[int, int]:
    """(messages the provider took, invitations it took twice) for ``count`` SMS and ``count`` emails.

    Every first attempt meets the fault; the retries, made after all of them, meet a provider that works.
    """
    base = simulator.base_url
    requests.delete(f"{base}/_simulator/messages", timeout=5)
    requests.post(
        f"{base}/_simulator/faults", json={"kind": fault, "delay": SLOW, "count": 2 * count}, timeout=5
    )
    twilio = TwilioSmsTransport(
        ACCOUNT, TOKEN, from_number="+15005550006", api_base_url=base, timeout=TIMEOUT
    )
    sendgrid = SendGridEmailTransport("SG.bench", "surveys@bench.test", api_base_url=base, timeout=TIMEOUT)
    started = datetime.now(UTC)
    jobs = [
        (lambda n=n: twilio.send_sms(sms(n)), lambda n=n: twilio.find_sent(sms(n), started))
        for n in range(count)
    ] + [(lambda n=n: sendgrid.send_email(email(n)), None) for n in range(count)]
    with ThreadPoolExecutor(max_workers=2 * count) as pool:
        errors = list(pool.map(lambda job: attempt(job[0]), jobs))
        time.sleep(SLOW + 0.3)  # the slow answers' messages are all recorded by now
        requests.delete(f"{base}/_simulator/faults", timeout=5)
        list(pool.map(lambda pair: policy(pair[0], *pair[1]), zip(errors, jobs, strict=True)))
    messages = requests.get(f"{base}/_simulator/messages", timeout=5).json()
    recipients = [message["to"] for message in messages]
    return len(messages), sum(recipients.count(to) > 1 for to in set(recipients))


def lookup_cost(simulator: SimulatorServer, rounds: int = 50) -> tuple[float, float]:
    twilio = TwilioSmsTransport(ACCOUNT, TOKEN, from_number="+15005550006", api_base_url=simulator.base_url)
    started = datetime.now(UTC)
    sends, lookups = [], []
    for n in range(rounds):
        begun = time.perf_counter()
        twilio.send_sms(sms(10_000 + n))
        sends.append(time.perf_counter() - begun)
        begun = time.perf_counter()
        twilio.find_sent(sms(10_000 + n), started)
        lookups.append(time.perf_counter() - begun)
    return statistics.median(sends), statistics.median(lookups)


def main() -> None:
    # The simulator's request log would drown the figures.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitations", type=int, default=20, help="SMS and as many emails per scenario")
    args = parser.parse_args()
    count = args.invitations
    with SimulatorServer(create_simulator_app(twilio_auth_token=TOKEN)) as simulator:
        print(f"{count} SMS and {count} email invitations per scenario, client timeout {TIMEOUT} s")
        for fault, what in (
            ("slow", f"answers after {SLOW} s"),
            ("reset", "resets after taking it"),
            ("500", "answers 500 after taking it"),
        ):
            before = run(blind, simulator, count, fault)
            after = run(looked_up, simulator, count, fault)
            print(
                f"  provider {what:28} blind retry: {before[0]:3} sent, {before[1]:3} twice"
                f"   look-up first: {after[0]:3} sent, {after[1]:3} twice"
            )
        send, lookup = lookup_cost(simulator)
        ratio = lookup / send
        print(f"  a look-up takes {lookup * 1000:.1f} ms, a send {send * 1000:.1f} ms ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
