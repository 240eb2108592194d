"""Referral links on PostgreSQL: the migration that gives existing requests a code, a promoter's request sent
through the outbox, a click on /r/<code> by a stranger, the conversion a used code brings (once), and clocks
that skip the requests another holds."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import select, text

from services.followup import service
from services.followup.app import create_app
from services.followup.models import MIGRATIONS, VERSION_TABLE, ReferralClick, ReferralRequest, outbox
from shared.clock import utcnow
from shared.db import create_database_engine
from shared.events import new_event, parse_event
from shared.migrations import alembic_config, upgrade
from tests.conftest import make_settings, migrated_service
from tests.fakes import ROBOT

LANDING = "https://shop.example.com/refer"


def scored(response_id: str, score: int, **data) -> dict:
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": 1,
            "score": score,
            "comment": None,
            "locale": "de",
            "touchpoint": "purchase",
            "channel": "email",
            "customer": {
                "customer_id": f"c-{response_id}",
                "external_id": "crm-1",
                "name": "Jörg Müller",
                "email": "joerg@example.com",
                "phone": "+4915112345678",
            },
            "submitted_at": utcnow().isoformat(),
            "sentiment": None,
            **data,
        },
    )


def code_used(code: str, event_id: str) -> dict:
    return new_event(
        "referral.code_used",
        {
            "referral_code": code,
            "event_id": event_id,
            "event_type": "purchase.completed",
            "customer_id": "c-friend",
            "occurred_at": utcnow().isoformat(),
        },
    )


def outbox_events(runtime, event_type: str) -> list[dict]:
    with runtime.database.transaction() as session:
        rows = session.execute(select(outbox.c.payload).where(outbox.c.event_type == event_type))
        return [parse_event(row.payload, event_type)[1] for row in rows]


def test_migration_gives_every_existing_referral_request_its_own_code(postgres_url):
    config = alembic_config(postgres_url, MIGRATIONS, VERSION_TABLE)
    command.upgrade(config, "followup_0004")
    engine = create_database_engine(postgres_url)
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO followup_referral_requests "
                    "(id, response_id, invitation_id, customer_id, customer_name, score, status, created_at) "
                    "VALUES (:id, :response, 'i-1', 'c-1', 'Ada', 9, 'requested', now())"
                ),
                {"id": f"ref-{n}", "response": f"r-{n}"},
            )
    upgrade(postgres_url, MIGRATIONS, VERSION_TABLE)

    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT code, clicks, send_at, status FROM followup_referral_requests ORDER BY id")
        ).all()
    engine.dispose()
    codes = {row.code for row in rows}
    assert len(codes) == 3 and all(len(code) == 16 for code in codes)
    # Nothing ever sends them: followup kept no email or phone for them.
    assert {(row.clicks, row.send_at, row.status) for row in rows} == {(0, None, "requested")}


def test_promoters_link_is_sent_clicked_by_a_stranger_and_converted_once(postgres_url):
    settings = make_settings(postgres_url, followup_referral_url=LANDING, followup_request_delay_minutes=0)
    with migrated_service("followup", settings) as followup:
        crm = service.create_webhook_endpoint(
            followup, ROBOT, "https://93.184.216.34/in", ["referral.converted"]
        )
        service.act_on_scored_response(followup, scored("r-1", 10))

        [sent] = outbox_events(followup, "referral.requested")
        code = sent["referral_url"].rsplit("/", 1)[1]
        assert sent["referral_url"] == f"http://testserver/r/{code}"
        assert (sent["locale"], sent["customer"]["preferred_channel"]) == ("de", "email")

        stranger = create_app(followup).test_client()
        click = stranger.get(f"/r/{code}", headers={"User-Agent": "Mail client\x00" + "z" * 300})
        assert click.status_code == 302 and click.headers["Location"] == f"{LANDING}?ref={code}"
        assert stranger.get("/r/NoSuchCode123456").status_code == 404

        service.attribute_referral(followup, code_used(code, "e-1"))
        service.attribute_referral(followup, code_used(code, "e-2"))
        service.attribute_referral(followup, code_used("NoSuchCode123456", "e-3"))

        with followup.database.transaction() as session:
            request = session.scalars(select(ReferralRequest)).one()
            [stored] = session.scalars(select(ReferralClick)).all()
            assert (request.status, request.clicks, request.sent_at is not None) == ("converted", 1, True)
            assert stored.user_agent == ("Mail client\ufffd" + "z" * 300)[:200]
        assert len(service.list_webhook_deliveries(followup, ROBOT, crm.id)) == 1


def test_clocks_skip_the_referral_requests_another_is_sending(postgres_url):
    settings = make_settings(postgres_url, followup_referral_url=LANDING, followup_request_delay_minutes=1)
    with migrated_service("followup", settings) as followup:
        for n in range(4):
            service.act_on_scored_response(followup, scored(f"r-{n}", 9))
        later = utcnow() + timedelta(minutes=2)

        first, second = followup.unit_of_work(), followup.unit_of_work()
        with first:
            taken_first = {request.id for request in first.referrals.due(later, 3)}
            with second:
                # Waiting for the first clock's locks would be a failure too, not a hang.
                second.session.execute(text("SET LOCAL lock_timeout = '2s'"))
                taken_second = {request.id for request in second.referrals.due(later, 10)}

        assert len(taken_first) == 3 and len(taken_second) == 1 and taken_first.isdisjoint(taken_second)
        assert outbox_events(followup, "referral.requested") == []
