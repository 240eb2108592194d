"""The fault harness: services mode under SIGKILLs and a misbehaving provider; does every customer get one
message?

    .venv/bin/python -m tests.e2e.faults [--events 3000] [--kills 12] [--seed 6]     (make faults)

Starts the invitation half of infra/Procfile (survey web, worker and clock, dispatch worker and clock) on a
fresh PostgreSQL database and a Redis of its own (restarted empty when killed: its machine was lost), with
the provider simulator as SendGrid and Twilio. Posts ``--events`` signed CRM events, each for a customer
of its own (half by email, half by SMS), and meanwhile, at seeded random points of that stream, kills
workers, clocks and Redis with SIGKILL and starts them again, and spoils provider calls (429 with
Retry-After, 500 after taking the message, answers after the client's timeout, connection resets). Then
it waits for the system to be quiet (every outbox row acknowledged, no delivery waiting or in flight) and
prints:

- events accepted (answered 202), invitations, deliveries by state, provider calls the simulator recorded;
- sends per invitation (messages per customer address, as the customer would receive them);
- deliveries whose worker died mid-send, before the provider call or during it;
- lost: accepted events with no invitation, no delivery, or no message at the provider (an email shown
  `unknown` that SendGrid never took counts: its customer got nothing);
- duplicated: customers who received more than one message (a message the provider took though our call
  timed out counts: its customer has it);
- the time from the last fault to quiet; with the load average after posting and when quiet.

Timeouts are shortened so the run ends in minutes: provider calls wait 1 s (slow answers come after 3 s),
a dead worker's deliveries are looked for after 15 s (DELIVERY_LEASE_SECONDS), unacknowledged events are
published again after 5 s (OUTBOX_REDELIVER_AFTER). A retry after a 429 or an unknown outcome still waits
dispatch's 30 s backoff, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from services.dispatch import failures
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, crm_event, signed_request, wait_for
from tests.e2e.processes import (
    BIN,
    Process,
    RedisServer,
    free_port,
    log_tail,
    procfile_commands,
    wait_for_port,
)

TWILIO_TOKEN = "fault-harness-twilio-token"
TWILIO_ACCOUNT = "AC" + "f" * 32
PROCESSES = ("survey-web", "survey-worker", "survey-clock", "dispatch-worker", "dispatch-clock")
# What may be killed: every worker and clock, and the broker. The web process stays (a CRM retries what it
# could not post; what matters is what was accepted).
VICTIMS = ("survey-worker", "survey-clock", "dispatch-worker", "dispatch-clock", "redis")
PROVIDER_FAULTS = ("429", "500", "slow", "reset")
IN_FLIGHT = ("scheduled", "quiet_hours", "sending")


@dataclass(frozen=True)
class Plan:
    """What the harness does, all drawn from ``seed``: the same seed, the same kills and faults in order."""

    events: int = 3000
    kills: int = 12
    seed: int = 6  # kills every process, dispatch's worker four times (with 12 kills)
    provider_faults: int | None = None  # default: as many as kills
    sms_share: float = 0.5
    quiet_timeout: float = 600.0
    post_threads: int = 8

    def schedule(self) -> list[tuple[int, str, dict[str, Any]]]:
        """(events accepted before it, "kill" or "fault", details), in order.

        Placed by events rather than seconds, so that a kill finds the same work under way on a fast machine
        and on a busy one: the workers are busiest while the events arrive.
        """
        chance = random.Random(self.seed)
        actions: list[tuple[int, str, dict[str, Any]]] = []

        def position() -> int:
            return round(chance.uniform(0.02, 0.95) * self.events)

        for _ in range(self.kills):
            victim = chance.choice(VICTIMS)
            at = position()
            actions.append((at, "kill", {"victim": victim, "down": round(chance.uniform(0.2, 3.0), 2)}))
        faults = self.kills if self.provider_faults is None else self.provider_faults
        for _ in range(faults):
            fault = {
                "kind": chance.choice(PROVIDER_FAULTS),
                "provider": chance.choice(("sendgrid", "twilio")),
                "count": chance.randint(1, 4),
                "retry_after": 2,
                "delay": 3,
            }
            actions.append((position(), "fault", fault))
        return sorted(actions, key=lambda action: action[0])

    def channel_of(self, number: int) -> str:
        return "sms" if random.Random(f"{self.seed}-{number}").random() < self.sms_share else "email"


@dataclass
class Report:
    accepted: int = 0
    invitations: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)
    provider_calls: int = 0
    sends_per_invitation: Counter[int] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    republished: int = 0
    interrupted: Counter[str] = field(default_factory=Counter)  # "before the call" / "during the call"
    posting_seconds: float = 0.0
    faults_seconds: float = 0.0
    quiet_after: float | None = None
    done: list[str] = field(default_factory=list)
    load: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        def load(moment: str) -> str:
            return "load average " + " ".join(f"{value:.2f}" for value in self.load[moment])

        quiet = f"{self.quiet_after:.1f} s" if self.quiet_after is not None else "not quiet in time"
        states = ", ".join(f"{state} {count}" for state, count in sorted(self.deliveries.items()))
        sends = ", ".join(f"{count} x {sends}" for sends, count in sorted(self.sends_per_invitation.items()))
        interrupted = sum(self.interrupted.values())
        return [
            *(f"fault                  {done}" for done in self.done),
            f"events accepted        {self.accepted} in {self.posting_seconds:.1f} s"
            f" ({self.accepted / max(self.posting_seconds, 0.001):.0f}/s)   {load('posted')}",
            f"invitations            {self.invitations}",
            f"deliveries             {sum(self.deliveries.values())} ({states})",
            f"provider calls         {self.provider_calls} recorded by the simulator",
            f"sends per invitation   {sends or 'none'} (messages per customer)",
            f"outbox published again {self.republished}",
            f"worker died mid-send   {interrupted} deliveries"
            f" ({self.interrupted['before the call']} before the call: sent after the lease;"
            f" {self.interrupted['during the call']} during it: looked up or shown unknown)",
            f"lost                   {len(self.lost)}{_examples(self.lost)}",
            f"duplicated             {len(self.duplicated)}{_examples(self.duplicated)}",
            f"quiet again            {quiet} after the last fault ({self.faults_seconds:.1f} s of faults)"
            f"   {load('quiet')}",
        ]


def _examples(items: list[str]) -> str:
    return f"  e.g. {', '.join(items[:5])}" if items else ""


class FaultHarness:
    """The processes, the database, the broker and the simulator of one run; killed and restarted at will."""

    def __init__(self, plan: Plan, directory: Path) -> None:
        self.plan, self.directory = plan, directory
        self.log = directory / "services.log"
        self.database_name = f"closeloop_faults_{uuid.uuid4().hex[:10]}"
        self.database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database_name}"
        self.redis = RedisServer(directory)
        self.survey_port, simulator_port = free_port(), free_port()
        self.simulator_url = f"http://127.0.0.1:{simulator_port}"
        command = [str(BIN / "python"), "-m", "closeloop.provider_simulator", "--port", str(simulator_port)]
        command += ["--twilio-auth-token", TWILIO_TOKEN]
        self.simulator = Process("simulator", command, {}, directory / "simulator.log")
        environment = {
            "DATABASE_URL": self.database_url,
            "BROKER_URL": self.redis.url,
            "SURVEY_PORT": str(self.survey_port),
            "SURVEY_PUBLIC_URL": f"http://127.0.0.1:{self.survey_port}",
            "DISPATCH_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
            "CLOSELOOP_WEBHOOK_SECRET": TEST_SECRET,
            "CLOSELOOP_TRANSPORT": "providers",
            "SENDGRID_API_KEY": "SG.fault-harness",
            "SENDGRID_API_BASE_URL": self.simulator_url,
            "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": self.simulator_url,
            "PROVIDER_TIMEOUT_SECONDS": "1",
            "DELIVERY_LEASE_SECONDS": "15",
            "OUTBOX_REDELIVER_AFTER": "5",
            "QUIET_HOURS": "off",
            "REMINDER_COUNT": "0",
        }
        commands = procfile_commands()
        self.processes = {name: Process(name, commands[name], environment, self.log) for name in PROCESSES}
        self._engine: Any = None
        self.answered = 0  # events posted and answered so far (any answer): where the run is
        self._answered_lock = threading.Lock()

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultHarness]:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.database_name}"'))
        try:
            self.redis.start()
            self.simulator.start()
            for process in self.processes.values():
                process.start()
            self._engine = create_engine(self.database_url, pool_pre_ping=True)
            wait_for_port(int(self.simulator_url.rsplit(":", 1)[1]), what="the provider simulator")
            wait_for_port(self.survey_port, timeout=90, what="survey-web")
            wait_for(self._dispatch_migrated, timeout=90, what="dispatch's tables", ignore=Exception)
            yield self
        finally:
            for process in (*self.processes.values(), self.simulator):
                process.stop()
            self.redis.kill()
            if self._engine is not None:
                self._engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)'))
            admin.dispose()

    def _dispatch_migrated(self) -> bool:
        self._scalar("SELECT count(*) FROM dispatch_deliveries")
        return True

    def _scalar(self, sql: str) -> Any:
        with self._engine.connect() as connection:
            return connection.execute(text(sql)).scalar()

    def _rows(self, sql: str) -> list[Any]:
        with self._engine.connect() as connection:
            return list(connection.execute(text(sql)).all())

    # --- faults -------------------------------------------------------------------------------------------

    def kill(self, victim: str, down: float) -> None:
        """SIGKILL, a pause, and a start again: a machine that died and came back."""
        target = self.redis if victim == "redis" else self.processes[victim]
        target.kill()
        time.sleep(down)
        if victim == "redis":
            self.redis.start()
        else:
            self.processes[victim].start()

    def spoil_provider(self, fault: dict[str, Any]) -> None:
        requests.post(f"{self.simulator_url}/_simulator/faults", json=fault, timeout=5).raise_for_status()

    # --- load ---------------------------------------------------------------------------------------------

    def post_events(self) -> tuple[dict[str, str], list[str]]:
        """Every event posted once, concurrently; the invitation ids of those answered 202, and those refused.

        A request that fails is posted again, as a CRM would: it is accepted once (a repeat answers 200).
        """
        url = f"http://127.0.0.1:{self.survey_port}/v1/events"

        def post(number: int) -> tuple[str, str | None]:
            channel = self.plan.channel_of(number)
            event = crm_event(
                f"faults-{number}",
                external_id=f"faults-customer-{number}",
                email=f"c{number}@example.com",
                phone=f"+1555{number:07d}",
                preferred_channel=channel,
            )
            try:
                for _ in range(5):
                    body, headers = signed_request(event)
                    try:
                        answer = requests.post(url, data=body, headers=headers, timeout=30)
                    except requests.RequestException:
                        time.sleep(1)
                        continue
                    if answer.status_code in (200, 202):
                        # The receipt names the stored event; survey's clock decides it right after.
                        return event["id"], answer.json()["event_id"]
                    time.sleep(1)
                return event["id"], None
            finally:
                with self._answered_lock:
                    self.answered += 1

        with ThreadPoolExecutor(self.plan.post_threads) as pool:
            outcomes = dict(pool.map(post, range(self.plan.events)))
        accepted = {event: invitation for event, invitation in outcomes.items() if invitation is not None}
        return accepted, [event for event, invitation in outcomes.items() if invitation is None]

    # --- quiet and counting -------------------------------------------------------------------------------

    def unfinished(self) -> dict[str, int]:
        """What still moves: outbox rows unacknowledged (not given up), deliveries waiting or in flight."""
        waiting = ", ".join(f"'{state}'" for state in IN_FLIGHT)
        unacknowledged = "WHERE acknowledged_at IS NULL AND next_publish_at IS NOT NULL"
        return {
            "undecided CRM events": self._scalar(
                "SELECT count(*) FROM survey_crm_events WHERE status = 'received'"
            ),
            "survey outbox": self._scalar(f"SELECT count(*) FROM survey_outbox {unacknowledged}"),
            "dispatch outbox": self._scalar(f"SELECT count(*) FROM dispatch_outbox {unacknowledged}"),
            "deliveries": self._scalar(
                f"SELECT count(*) FROM dispatch_deliveries WHERE status IN ({waiting})"
            ),
        }

    def quiet(self) -> bool:
        if any(self.unfinished().values()):
            return False
        invited = self._scalar("SELECT count(*) FROM survey_crm_events WHERE invitation_id IS NOT NULL")
        return self._scalar("SELECT count(*) FROM dispatch_deliveries") >= invited

    def count(self, accepted: dict[str, str], report: Report) -> None:
        """``accepted``: the CRM's event id -> survey's stored event id (the receipt's ``event_id``)."""
        report.accepted = len(accepted)
        invitation_of = dict(self._rows("SELECT id, invitation_id FROM survey_crm_events"))
        accepted = {event_id: invitation_of.get(stored) or "" for event_id, stored in accepted.items()}
        invited = {invitation for invitation in accepted.values() if invitation}
        stored = {row[0] for row in self._rows("SELECT id FROM survey_invitations")}
        report.invitations = len(invited & stored)
        deliveries = {
            row.invitation_id: row
            for row in self._rows(
                "SELECT invitation_id, channel, address, status FROM dispatch_deliveries"
                " WHERE kind = 'invitation'"
            )
        }
        report.deliveries = Counter(row.status for row in deliveries.values())
        messages = requests.get(f"{self.simulator_url}/_simulator/messages", timeout=60).json()
        report.provider_calls = len(messages)
        received = Counter(message["to"] for message in messages)
        for event_id, invitation in sorted(accepted.items()):
            delivery = deliveries.get(invitation)
            if not invitation or invitation not in stored:
                report.lost.append(f"{event_id} (no invitation)")
            elif delivery is None:
                report.lost.append(f"{event_id} (no delivery)")
            elif not received[delivery.address]:
                report.lost.append(f"{event_id} ({delivery.channel} {delivery.status}, never sent)")
            else:
                sends = received[delivery.address]
                report.sends_per_invitation[sends] += 1
                if sends > 1:
                    report.duplicated.append(f"{event_id} ({sends} x {delivery.channel})")
        report.republished = self._scalar("SELECT count(*) FROM survey_outbox WHERE publish_attempts > 1")
        for (last_error,) in self._rows("SELECT last_error FROM dispatch_deliveries"):
            if last_error == failures.INTERRUPTED_BEFORE_CALL:
                report.interrupted["before the call"] += 1
            elif last_error == failures.INTERRUPTED:
                report.interrupted["during the call"] += 1


def _poll(check, timeout: float, interval: float = 0.5) -> bool:
    """True once ``check`` is (an error counts as not yet: a database busy under faults); False at timeout.
    Slower than tests' wait_for: the busy machine is what is measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return True
        time.sleep(interval)
    return False


def run(plan: Plan, directory: Path, echo: Callable[[str], None] = print) -> Report:
    """One run of ``plan``: start, post under faults, wait for quiet, count."""
    report = Report()
    report.load["start"] = os.getloadavg()
    harness = FaultHarness(plan, directory)
    with harness.running():
        schedule = plan.schedule()
        started = time.monotonic()
        last_fault = [started]

        def chaos() -> None:
            for at, action, details in schedule:
                while harness.answered < at:
                    time.sleep(0.05)
                moment = f"at event {harness.answered} ({time.monotonic() - started:.1f} s)"
                if action == "kill":
                    harness.kill(details["victim"], details["down"])
                    report.done.append(f"{details['victim']} killed {moment}")
                else:
                    harness.spoil_provider(details)
                    report.done.append(
                        f"{details['count']} x {details['kind']} at {details['provider']} {moment}"
                    )
                last_fault[0] = time.monotonic()

        saboteur = threading.Thread(target=chaos, name="fault-harness-chaos")
        saboteur.start()
        accepted, refused = harness.post_events()
        report.posting_seconds = time.monotonic() - started
        report.load["posted"] = os.getloadavg()
        saboteur.join()
        report.faults_seconds = last_fault[0] - started
        if refused:
            echo(f"{len(refused)} events never accepted after 5 tries, e.g. {refused[:3]}")
        if _poll(harness.quiet, plan.quiet_timeout):
            report.quiet_after = time.monotonic() - last_fault[0]
        else:
            echo(f"not quiet after {plan.quiet_timeout:.0f} s: {harness.unfinished()}")
            echo(log_tail(harness.log, 4000))
        report.load["quiet"] = os.getloadavg()
        harness.count(accepted, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--provider-faults", type=int, default=None, help="default: as many as kills")
    parser.add_argument("--sms-share", type=float, default=0.5, help="of customers, by SMS (the rest email)")
    parser.add_argument("--quiet-timeout", type=float, default=600.0)
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (printed path)")
    args = parser.parse_args(argv)
    plan = Plan(
        events=args.events,
        kills=args.kills,
        seed=args.seed,
        provider_faults=args.provider_faults,
        sms_share=args.sms_share,
        quiet_timeout=args.quiet_timeout,
    )
    directory = Path(tempfile.mkdtemp(prefix="closeloop-faults-"))
    print(
        f"fault harness: {plan.events} events, {plan.kills} kills, seed {plan.seed}"
        f"; {os.cpu_count()} CPUs, load average " + " ".join(f"{value:.2f}" for value in os.getloadavg()),
        flush=True,
    )
    try:
        report = run(plan, directory)
    finally:
        if not args.keep_logs:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"logs in {directory}")
    for line in report.lines():
        print(line)
    return 0 if not report.lost and not report.duplicated and report.quiet_after is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
