"""The dispatch worker's CPU per invitation sent, measured in this process without the loop around it.

    .venv/bin/python bench/dispatch_profile.py [--invitations 400] [--profile | --parts]

Binds dispatch's consumers to a stub broker on a fresh PostgreSQL database, as its worker binds them
(services mode: SendGrid through its SDK's payload and ``requests``, the provider simulator standing in
for SendGrid as in loop_services_bench.py, quiet hours off, the default reminder), and calls the
``invitation.requested`` actor's function with envelopes as survey emits them: validation, the schedule's
transaction, the claim, the provider call, the outcome's transaction (with the reminder it plans). The
dramatiq worker's own share (fetching, middleware, acknowledging to Redis) is left out: bare dramatiq pays
it too.

``--once`` runs one pass and nothing else, for ``valgrind --tool=callgrind``: the difference of two runs'
instruction counts (``--invitations`` 100 and 300, say) over the difference of sends is the instructions per
send, repeatable where CPU time is not (issue 19).

Prints per invitation: this thread's CPU time (the best of 3 passes: others' load inflates it, never deflates
it; on a busy 2-core machine passes still differ by 10-20%, so compare changes of a few hundred microseconds
by timing the step alone), the SQL statements and commits (counted by bench/loop_counts_hooks), beside the
CPU of one plain ``session.post(json=...)`` of a like payload to the same simulator on a kept-alive session;
and the CPU of the PostgreSQL backends serving it (per round trip they spend about as much as the client, in
the kernel mostly).
``--profile`` prints cProfile's top functions (on the thread's CPU clock) instead; ``--parts`` the CPU spent
in each step of ``PARTS`` (timed by wrappers, not a profiler, so pure-Python chains are not inflated).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import pstats
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import requests

sys.path.insert(0, os.path.dirname(__file__))
from loop_services_bench import ADMIN_DSN, BIN, free_port, pid_cpu, start, stop, wait_until  # noqa: E402


def _counting_hooks() -> Any:
    """bench/loop_counts_hooks' module (its file is named for ``site`` to load it, not to be imported)."""
    path = Path(__file__).resolve().parent / "loop_counts_hooks" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("loop_counts_hooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invitation_requested(n: int) -> dict[str, Any]:
    """An envelope as survey's worker emits it for the loop bench's customers (email only, no time zone)."""
    from shared.events import new_event  # noqa: PLC0415

    invitation_id = str(uuid.uuid4())
    return new_event(
        "invitation.requested",
        {
            "invitation_id": invitation_id,
            "touchpoint": "purchase",
            "locale": "en",
            "preferred_channel": "email",
            "contact": {
                "customer_id": str(uuid.uuid4()),
                "name": "Loop Bench",
                "email": f"profile{n}-{invitation_id[:8]}@example.com",
                "phone": None,
                "timezone": None,
            },
            "message": {
                "subject": "How did we do?",
                "greeting": "Hello Loop Bench,",
                "question": "How likely are you to recommend us to a friend or colleague?",
                "low_label": "Not at all likely",
                "high_label": "Extremely likely",
                "sms_body": "How likely are you to recommend us? Reply 0-10",
                "answer_url": f"http://127.0.0.1:8000/s/{uuid.uuid4().hex}",
            },
            "expires_at": None,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invitations", type=int, default=400)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--parts", action="store_true", help="CPU per send of each step, each timed alone (no profiler)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="one pass, no floor: under valgrind --tool=callgrind, two runs of different --invitations give "
        "the instructions per send by their difference (repeatable, where CPU time is not)",
    )
    args = parser.parse_args()

    database = f"profile_dispatch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"dispatch-profile-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    port = free_port()
    simulator_url = f"http://127.0.0.1:{port}"
    simulator = start(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--keep-alive",
            "60",
            "closeloop.provider_simulator:create_simulator_app()",
        ],
        {},
        scratch / "simulator.log",
    )
    database_url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    os.environ.update(
        DATABASE_URL=f"{database_url}/{database}",
        BROKER_URL="memory://",
        CLOSELOOP_WEBHOOK_SECRET="whsec_" + "A" * 32,
        CLOSELOOP_SECRET_KEY="bench-secret-key",
        CLOSELOOP_TRANSPORT="providers",
        QUIET_HOURS="off",
        SENDGRID_API_KEY="SG.bench",
        SENDGRID_API_BASE_URL=simulator_url,
        TWILIO_ACCOUNT_SID=f"AC{'5' * 32}",
        TWILIO_AUTH_TOKEN="simulator-auth-token",
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_API_BASE_URL=simulator_url,
    )
    try:
        messages_url = f"{simulator_url}/_simulator/messages"
        wait_until(lambda: requests.get(messages_url, timeout=2).ok, 30, "simulator")
        from dramatiq.brokers.stub import StubBroker  # noqa: PLC0415

        from closeloop.services import SERVICES  # noqa: PLC0415
        from shared.broker import actor_name  # noqa: PLC0415
        from shared.settings import Settings  # noqa: PLC0415

        wiring = SERVICES["dispatch"]
        runtime = wiring.bootstrap(Settings.from_env())
        wiring.migrate(runtime)
        broker = StubBroker()
        actors = {actor.actor_name: actor for actor in wiring.declare(broker, runtime)}
        consume = actors[actor_name("dispatch", "invitation.requested")].fn
        counts = _counting_hooks().count_database_work()

        def sent() -> int:
            return len(requests.get(messages_url, timeout=30).json())

        admin = psycopg.connect(ADMIN_DSN, autocommit=True)

        def server_cpu() -> float:
            """CPU seconds of the PostgreSQL backends serving the dispatch database so far."""
            backends = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchall()
            return sum(pid_cpu(pid) for (pid,) in backends)

        def run(count: int) -> tuple[float, float, float, float]:
            envelopes = [invitation_requested(n) for n in range(count)]
            before_sent, before_statements, before_commits = sent(), counts["sql"], counts["commit"]
            before_server = server_cpu()
            began = time.thread_time()
            for envelope in envelopes:
                consume(envelope)
            used = time.thread_time() - began
            served = server_cpu() - before_server
            if sent() - before_sent != count:
                raise SystemExit(f"expected {count} sends, the simulator has {sent() - before_sent}")
            return (
                used / count * 1e6,
                (counts["sql"] - before_statements) / count,
                (counts["commit"] - before_commits) / count,
                served / count * 1e6,
            )

        run(50)  # warm up: imports, the pool, the session to the simulator, compiled statements
        if args.parts:
            spent = time_parts()
            run(args.invitations)
            print(f"CPU per send of each step (inclusive of the steps it calls), {args.invitations} sends:")
            for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                print(f"  {seconds / args.invitations * 1e6:7.0f} us  {name}")
            return
        if args.profile:
            envelopes = [invitation_requested(n) for n in range(args.invitations)]
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for envelope in envelopes:
                consume(envelope)
            profiler.disable()
            profiler.dump_stats(scratch / "dispatch.prof")
            print(f"profile in {scratch / 'dispatch.prof'}")
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(70)
            stats.sort_stats("tottime").print_stats(40)
            return

        if args.once:
            used, per_send, _, _ = run(args.invitations)
            print(f"one pass of {args.invitations}: {used:.0f} us CPU per send, {per_send:.1f} statements")
            return
        passes = [run(args.invitations) for _ in range(3)]
        # The provider call's floor: the same JSON posted to the same simulator on one kept-alive session.
        payload = runtime.email.build_payload(_sample_email())
        session = requests.Session()
        url = f"{simulator_url}/v3/mail/send"
        session.post(url, json=payload, headers={"Authorization": "Bearer SG.bench"}, timeout=10)
        bare = []
        for _ in range(3):
            began = time.thread_time()
            for _ in range(args.invitations):
                session.post(url, json=payload, headers={"Authorization": "Bearer SG.bench"}, timeout=10)
            bare.append((time.thread_time() - began) / args.invitations * 1e6)
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f}; {args.invitations} invitations per pass, best of 3")
        print(
            f"dispatch, invitation.requested -> sent: {min(p[0] for p in passes):7.0f} us CPU per send "
            f"(passes: {', '.join(f'{p[0]:.0f}' for p in passes)}); "
            f"{passes[0][1]:.1f} SQL statements and {passes[0][2]:.1f} transactions per send"
        )
        print(
            f"PostgreSQL backends for it:             {min(p[3] for p in passes):7.0f} us CPU per send "
            f"(passes: {', '.join(f'{p[3]:.0f}' for p in passes)})"
        )
        print(f"plain requests session.post, like payload: {min(bare):7.0f} us CPU per call")
    finally:
        stop(simulator)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# Each step of an invitation's way through the worker, as ``module:Class.function`` (where it is looked up).
PARTS = (
    "shared.events:parse_event",
    "shared.unit_of_work:SqlUnitOfWork._begin",
    "shared.unit_of_work:SqlUnitOfWork._commit",
    "shared.unit_of_work:SqlUnitOfWork._close",
    "shared.unit_of_work:SqlUnitOfWork.consume",
    "shared.unit_of_work:SqlUnitOfWork.hold_marks",
    "services.dispatch.service:_new_delivery",
    "services.dispatch.service:_render_invitation",
    "services.dispatch.service:_next_reminder",
    "services.dispatch.service:_attempt",
    "services.dispatch.service:_send",
    "services.dispatch.service:_record_sent",
    "services.dispatch.unit_of_work:SqlDeliveries.add_new",
    "services.dispatch.unit_of_work:SqlDeliveries.save_claimed",
    "services.dispatch.unit_of_work:SqlOptOuts.has",
    "services.dispatch.providers.sendgrid_email:SendGridEmailTransport.build_payload",
    "requests.sessions:Session.post",
    "shared.broker:Acknowledgements.add",
    "shared.broker:observe_event_lag",
    "sqlalchemy.engine.base:Connection.execute",
    "sqlalchemy.orm.session:Session.connection",
    "sqlalchemy.orm.session:Session.commit",
    "sqlalchemy.orm.session:Session.close",
    "services.dispatch.unit_of_work:_column_values",
    "services.dispatch.service:_mark_sent",
    "jinja2.environment:Template.render",
    "requests.sessions:Session.prepare_request",
    "requests.adapters:HTTPAdapter.send",
    "services.dispatch.service:_outgoing",
    "shared.consumers:Consumer.__call__",
)


def time_parts() -> dict[str, float]:
    """Wrap each of ``PARTS`` to add up this thread's CPU time in it; returns the running totals."""
    import importlib  # noqa: PLC0415

    spent: dict[str, float] = {}
    for part in PARTS:
        module_name, qualified = part.split(":")
        owner: Any = importlib.import_module(module_name)
        *path, name = qualified.split(".")
        for attribute in path:
            owner = getattr(owner, attribute)
        original = getattr(owner, name)
        spent[qualified] = 0.0

        def timed(*args: Any, _original: Any = original, _name: str = qualified, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] += time.thread_time() - began

        setattr(owner, name, timed)
    return spent


def _sample_email() -> Any:
    from services.dispatch.providers import OutgoingEmail  # noqa: PLC0415

    return OutgoingEmail(
        to_email="profile@example.com",
        to_name="Loop Bench",
        subject="How did we do?",
        html="<p>" + "x" * 4000 + "</p>",
        text="x" * 1200,
        reference=str(uuid.uuid4()),
        unsubscribe_url="http://127.0.0.1:8000/unsubscribe/x",
        category="closeloop-invitation",
    )


if __name__ == "__main__":
    main()
