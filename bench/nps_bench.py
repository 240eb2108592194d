"""NPS breakdowns over 1,000,000 responses on PostgreSQL, beside a bare GROUP BY over the same rows.

    .venv/bin/python bench/nps_bench.py [--responses 1000000] [--runs 5]

Loads a fresh database (dropped at the end; $CLOSELOOP_TEST_POSTGRES names the server) through survey's own
migrations: 1,000,000 responses over a year and half as many unanswered invitations, generated in the
database (INSERT ... SELECT FROM generate_series: nothing crosses the wire row by row). Then it times:

- the baseline: ``SELECT channel, count(*) FROM survey_responses GROUP BY channel``, the cheapest grouping of
  the same rows;
- each breakdown as the API answers it (``analytics.service.nps_breakdown``: the rollup's refresh check and
  the query, figures and margins included), over the whole year;
- the same breakdown computed from the raw tables without the rollup (join, JSON attribute), for comparison;
- building the rollup from scratch, and the read after 1,000 new answers (one day counted again).

Each figure is the median of --runs runs, printed with the baseline and the ratio (target: within 2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from closeloop.services import SERVICES  # noqa: E402
from services.survey.analytics import service as analytics  # noqa: E402
from services.survey.analytics.domain import Dimension, Period  # noqa: E402
from shared.clock import utcnow  # noqa: E402
from shared.settings import Settings  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "CLOSELOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
YEAR_START, YEAR_END = date(2025, 1, 1), date(2025, 12, 31)
TARGET = 2.0

# Server-side generation: a deterministic spread of touchpoints, channels, plans, regions and scores
# (skewed high, as real NPS answers are) over 365 days; two invitations in three are answered. Ids and times
# rise with the row number, so every index grows at its right edge; the foreign keys are not checked row by
# row (session_replication_role = replica: the rows are made consistent by construction).
LOAD_SQL = [
    "SET session_replication_role = replica",
    "SELECT setseed(0.42)",
    """
    INSERT INTO survey_customers (id, external_id, email, phone, name, locale, timezone, preferred_channel,
                                  properties, created_at, updated_at)
    SELECT 'c' || lpad(c::text, 8, '0'), 'crm-' || c, NULL, NULL, NULL, 'en', NULL, 'email', '{}',
           timestamptz '2025-01-01', timestamptz '2025-01-01'
    FROM generate_series(0, 9999) AS c
    """,
    """
    INSERT INTO survey_invitations (id, token, customer_id, crm_event_id, follows_up_response_id, touchpoint,
                                    locale, properties, created_at, expires_at)
    SELECT 'i' || lpad(g::text, 10, '0'), 't' || lpad(g::text, 10, '0'),
           'c' || lpad((g % 10000)::text, 8, '0'), NULL, NULL,
           (ARRAY['purchase', 'support_call', 'site_visit'])[1 + floor(random() * 3)::int], 'en',
           json_build_object(
               'plan', (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + floor(random() * 4)::int],
               'region', (ARRAY['eu', 'us', 'apac', 'latam'])[1 + floor(random() * 4)::int],
               'order_id', 'A-' || g),
           timestamptz '2025-01-01' + (g::bigint * 365 * 86400 / :invitations) * interval '1 second', NULL
    FROM generate_series(1, :invitations) AS g
    """,
    """
    INSERT INTO survey_responses (id, invitation_id, customer_id, score, comment, channel, revision,
                                  submitted_at, updated_at)
    SELECT 'r' || lpad(g::text, 10, '0'), 'i' || lpad(g::text, 10, '0'),
           'c' || lpad((g % 10000)::text, 8, '0'),
           floor(11 * sqrt(random()))::int, NULL, (ARRAY['email', 'sms'])[1 + floor(random() * 2)::int], 1,
           answered, answered
    FROM generate_series(1, :invitations) AS g,
         LATERAL (SELECT timestamptz '2025-01-01' + interval '1 hour'
                         + (g::bigint * 365 * 86400 / :invitations) * interval '1 second' AS answered) AS a
    WHERE g % 3 <> 0
    """,
]

BASELINE_SQL = "SELECT channel, count(*) FROM survey_responses GROUP BY channel"

# The same figures straight from the raw tables, as the API would compute them without the rollup.
DIRECT_SQL = {
    "touchpoint": """
        SELECT i.touchpoint, count(*), count(*) FILTER (WHERE r.score >= 9),
               count(*) FILTER (WHERE r.score <= 6)
        FROM survey_responses r JOIN survey_invitations i ON i.id = r.invitation_id
        WHERE r.submitted_at >= :start AND r.submitted_at < :end GROUP BY i.touchpoint""",
    "segment plan": """
        SELECT i.properties ->> 'plan', count(*), count(*) FILTER (WHERE r.score >= 9),
               count(*) FILTER (WHERE r.score <= 6)
        FROM survey_responses r JOIN survey_invitations i ON i.id = r.invitation_id
        WHERE r.submitted_at >= :start AND r.submitted_at < :end GROUP BY 1""",
    "period week": """
        SELECT date_trunc('week', r.submitted_at AT TIME ZONE 'UTC'), count(*),
               count(*) FILTER (WHERE r.score >= 9), count(*) FILTER (WHERE r.score <= 6)
        FROM survey_responses r WHERE r.submitted_at >= :start AND r.submitted_at < :end GROUP BY 1""",
}


def median_seconds(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    name = f"closeloop_bench_nps_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        run(url, args.responses, args.runs)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, responses: int, runs: int) -> None:
    wiring = SERVICES["survey"]
    runtime = wiring.bootstrap(Settings(database_url=url))
    wiring.migrate(runtime)
    engine = runtime.database.engine
    invitations = responses * 3 // 2  # every third one unanswered: exactly ``responses`` answered

    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in LOAD_SQL:
            connection.execute(text(statement), {"invitations": invitations, "responses": responses})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    load = time.perf_counter() - started
    print(
        f"PostgreSQL, {responses:,} responses and {invitations:,} invitations over 2025, "
        f"loaded in {load:.1f} s"
    )

    started = time.perf_counter()
    analytics.refresh_rollup(runtime)  # the first read builds the rollup whole
    build = time.perf_counter() - started
    with engine.connect() as connection:
        rollup_rows = connection.execute(text("SELECT count(*) FROM survey_nps_daily")).scalar_one()
    print(
        f"rollup built from scratch in {build:.1f} s: {rollup_rows:,} rows (the first read after a migration)"
    )

    def baseline_query() -> None:
        with engine.connect() as connection:
            connection.execute(text(BASELINE_SQL)).all()

    baseline = median_seconds(baseline_query, runs)
    print(f"median of {runs} runs; baseline: bare GROUP BY over the {responses:,} responses")
    print(f"{'breakdown over the year':34} {'ms':>9} {'baseline ms':>12} {'ratio':>7}")
    print(
        f"{'bare GROUP BY channel (baseline)':34} {baseline * 1000:9.1f} {baseline * 1000:12.1f} {1.0:6.2f}x"
    )

    breakdowns: list[tuple[str, Callable[[], object]]] = [
        ("overall", lambda: analytics.nps_breakdown(runtime, None, YEAR_START, YEAR_END)),
        ("touchpoint", lambda: analytics.nps_breakdown(runtime, Dimension.TOUCHPOINT, YEAR_START, YEAR_END)),
        ("channel", lambda: analytics.nps_breakdown(runtime, Dimension.CHANNEL, YEAR_START, YEAR_END)),
        (
            "segment plan",
            lambda: analytics.nps_breakdown(
                runtime, Dimension.SEGMENT, YEAR_START, YEAR_END, attribute="plan"
            ),
        ),
    ]
    for period in Period:
        breakdowns.append(
            (
                f"period {period.value}",
                lambda period=period: analytics.nps_breakdown(
                    runtime, Dimension.PERIOD, YEAR_START, YEAR_END, period=period
                ),
            )
        )
    worst = 0.0
    for label, breakdown in breakdowns:
        seconds = median_seconds(breakdown, runs)
        worst = max(worst, seconds / baseline)
        print(f"{label:34} {seconds * 1000:9.1f} {baseline * 1000:12.1f} {seconds / baseline:6.2f}x")

    print("without the rollup (raw tables, the same GROUP BY with conditional counts), for comparison:")
    bounds = {"start": "2025-01-01T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"}
    for label, sql in DIRECT_SQL.items():

        def direct(sql: str = sql) -> None:
            with engine.connect() as connection:
                connection.execute(text(sql), bounds).all()

        seconds = median_seconds(direct, max(1, runs // 2))
        print(f"{'raw ' + label:34} {seconds * 1000:9.1f} {baseline * 1000:12.1f} {seconds / baseline:6.2f}x")

    # Today's answers come in: the next read counts the changed day again, not the year.
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO survey_responses (id, invitation_id, customer_id, score, comment, channel,
                                              revision, submitted_at, updated_at)
                SELECT 'new' || i.id, i.id, i.customer_id, 10, NULL, 'email', 1, now(), now()
                FROM survey_invitations i
                WHERE NOT EXISTS (SELECT 1 FROM survey_responses r WHERE r.invitation_id = i.id)
                LIMIT 1000
                """
            )
        )
    started = time.perf_counter()
    analytics.nps_breakdown(runtime, Dimension.TOUCHPOINT, YEAR_START, utcnow().date())
    after_new = time.perf_counter() - started
    print(
        f"{'touchpoint, after 1,000 new answers':34} {after_new * 1000:9.1f} {baseline * 1000:12.1f} "
        f"{after_new / baseline:6.2f}x (one day counted again)"
    )
    verdict = "within" if worst <= TARGET else "NOT within"
    print(f"slowest breakdown: {worst:.2f}x the bare GROUP BY, {verdict} the {TARGET:.0f}x target")
    runtime.database.dispose()


if __name__ == "__main__":
    main()
