"""NPS analytics on a small seeded set, on PostgreSQL and SQLite, checked against figures worked out by hand.

The seeded set (2026-03-02, a Monday, to 2026-03-15, a Sunday; days in UTC):

    #   day     score  category   touchpoint    channel  plan      (region)
    1   Mar 2   10     promoter   purchase      email    pro       eu
    2   Mar 3    9     promoter   purchase      email    pro       eu
    3   Mar 4    8     passive    purchase      sms      free      us
    4   Mar 5    3     detractor  support_call  sms      free      eu
    5   Mar 6   10     promoter   purchase      email    team      us
    6   Mar 8    6     detractor  support_call  email    pro       eu   (23:59:59: still week 1)
    7   Mar 9    9     promoter   support_call  sms      pro       us   (00:00:00: week 2)
    8   Mar 10   0     detractor  purchase      email    free      eu
    9   Mar 12   7     passive    purchase      email    (not set) us
    10  Mar 15  10     promoter   support_call  sms      pro       eu

and six invitations nobody answered: purchase/pro Mar 2, support_call/free Mar 7, purchase/free Mar 9,
purchase/team Mar 11, support_call/pro Mar 13, support_call/(no plan) Mar 14. So 16 invitations in the
range: 9 purchase, 7 support_call; 8 in each week; plans pro 7, free 5, team 2, not set 2. Outside the
range: a 10 on Feb 27 and a 0 on Mar 16, each with its invitation.

Margin of error, by hand: with p and d the promoters' and detractors' shares of n responses, the +1/0/-1
scores have the variance var = p + d - (p - d)^2 and the margin is 1.96 * sqrt(var / n) * 100 points.
"""

from __future__ import annotations

import csv
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest

from services.survey.analytics import service as analytics
from services.survey.analytics.domain import Dimension, Period
from services.survey.app import create_app
from services.survey.bootstrap import periodic_jobs
from services.survey.models import Customer, Invitation, Response, ResponseKeyPhrase, ResponseSentiment
from shared.clock import utcnow
from shared.events import new_event
from shared.scheduling import run_due_jobs
from tests.conftest import make_settings, migrated_service, staff_client

START, END = date(2026, 3, 2), date(2026, 3, 15)

ANSWERED = [
    # (day, hour:minute:second, score, touchpoint, channel, plan, region)
    (2, (10, 0, 0), 10, "purchase", "email", "pro", "eu"),
    (3, (10, 0, 0), 9, "purchase", "email", "pro", "eu"),
    (4, (10, 0, 0), 8, "purchase", "sms", "free", "us"),
    (5, (10, 0, 0), 3, "support_call", "sms", "free", "eu"),
    (6, (10, 0, 0), 10, "purchase", "email", "team", "us"),
    (8, (23, 59, 59), 6, "support_call", "email", "pro", "eu"),
    (9, (0, 0, 0), 9, "support_call", "sms", "pro", "us"),
    (10, (10, 0, 0), 0, "purchase", "email", "free", "eu"),
    (12, (10, 0, 0), 7, "purchase", "email", None, "us"),
    (15, (10, 0, 0), 10, "support_call", "sms", "pro", "eu"),
]
UNANSWERED = [
    (2, "purchase", "pro"),
    (7, "support_call", "free"),
    (9, "purchase", "free"),
    (11, "purchase", "team"),
    (13, "support_call", "pro"),
    (14, "support_call", None),
]


def at(month: int, day: int, hms: tuple[int, int, int] = (10, 0, 0)) -> datetime:
    return datetime(2026, month, day, *hms, tzinfo=UTC)


def seed(runtime) -> dict[int, str]:
    """The set above; returns the response ids by their number."""
    ids: dict[int, str] = {}
    with runtime.database.transaction() as session:
        customer = Customer(
            id=str(uuid.uuid4()),
            external_id="crm-seeded",
            email=None,
            phone=None,
            name="Seeded",
            locale="en",
            timezone=None,
            preferred_channel="email",
            properties={},
            created_at=at(3, 1),
            updated_at=at(3, 1),
        )
        session.add(customer)
        session.flush()

        def invite(when: datetime, touchpoint: str, plan: str | None, region: str | None) -> Invitation:
            properties = {"order_id": f"A-{uuid.uuid4().hex[:6]}"}
            if plan:
                properties["plan"] = plan
            if region:
                properties["region"] = region
            invitation = Invitation(
                id=str(uuid.uuid4()),
                token=uuid.uuid4().hex,
                customer_id=customer.id,
                crm_event_id=None,
                follows_up_response_id=None,
                touchpoint=touchpoint,
                locale="en",
                properties=properties,
                created_at=when,
                expires_at=None,
            )
            session.add(invitation)
            session.flush()
            return invitation

        def answer(
            number: int, when: datetime, score: int, touchpoint: str, channel: str, plan, region
        ) -> None:
            # Invited at midnight of the same day (the day counts, not the hour).
            invitation = invite(when.replace(hour=0, minute=0, second=0), touchpoint, plan, region)
            response = Response(
                id=str(uuid.uuid4()),
                invitation_id=invitation.id,
                customer_id=customer.id,
                score=score,
                comment=None,
                channel=channel,
                revision=1,
                submitted_at=when,
                updated_at=when,
            )
            session.add(response)
            session.flush()
            ids[number] = response.id

        for number, (day, hms, score, touchpoint, channel, plan, region) in enumerate(ANSWERED, start=1):
            answer(number, at(3, day, hms), score, touchpoint, channel, plan, region)
        for day, touchpoint, plan in UNANSWERED:
            invite(at(3, day), touchpoint, plan, "eu")
        answer(11, at(2, 27), 10, "purchase", "email", "pro", "eu")
        answer(12, at(3, 16), 0, "purchase", "email", "pro", "eu")
    return ids


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def survey(request):
    settings = make_settings(request.getfixturevalue(request.param))
    with migrated_service("survey", settings) as runtime:
        runtime.responses = seed(runtime)
        yield runtime


def figures(breakdown) -> dict[str | None, tuple]:
    return {
        group.key: (
            group.figures.responses,
            group.figures.promoters,
            group.figures.passives,
            group.figures.detractors,
            group.figures.nps,
            group.figures.margin_of_error,
            group.figures.invitations,
            group.figures.response_rate,
        )
        for group in breakdown.groups
    }


def test_overall_figures_of_the_seeded_set_match_the_hand_calculation(survey):
    overall = analytics.nps_breakdown(survey, None, START, END).overall

    # 10 responses: 5 promoters (#1 #2 #5 #7 #10), 2 passives (#3 #9), 3 detractors (#4 #6 #8).
    # NPS = (5 - 3) / 10 = 20.0. p = 0.5, d = 0.3: var = 0.8 - 0.2^2 = 0.76; var / n = 0.076;
    # sqrt = 0.27568; * 1.96 = 0.54033: 54.0 points. Response rate 10 / 16 invitations = 0.625.
    assert overall.as_dict() == {
        "responses": 10,
        "promoters": 5,
        "passives": 2,
        "detractors": 3,
        "nps": 20.0,
        "margin_of_error": 54.0,
        "invitations": 16,
        "response_rate": 0.625,
    }


def test_figures_by_touchpoint_match_the_hand_calculation(survey):
    breakdown = analytics.nps_breakdown(survey, Dimension.TOUCHPOINT, START, END)

    assert figures(breakdown) == {
        # 10 9 8 10 0 7: P 3, passives 2, D 1, n 6. NPS = 2/6 = 33.3. p = .5, d = .1667: var = .6667 - .1111
        # = .5556; / 6 = .09259; sqrt = .30429; * 1.96 = .5964: 59.6. 6 of 9 invitations: .6667.
        "purchase": (6, 3, 2, 1, 33.3, 59.6, 9, 0.6667),
        # 3 6 9 10: P 2, D 2, n 4. NPS 0. var = 1 - 0 = 1; / 4 = .25; sqrt = .5; * 1.96 = .98: 98.0.
        # 4 of 7 invitations: .5714.
        "support_call": (4, 2, 0, 2, 0.0, 98.0, 7, 0.5714),
    }


def test_figures_by_channel_have_no_response_rate(survey):
    breakdown = analytics.nps_breakdown(survey, Dimension.CHANNEL, START, END)

    assert figures(breakdown) == {
        # 10 9 10 6 0 7: P 3, passives 1, D 2, n 6. NPS = 1/6 = 16.7. var = .8333 - .0278 = .8056; / 6 =
        # .13426; sqrt = .36641; * 1.96 = .7182: 71.8. Survey does not know an invitation's channel.
        "email": (6, 3, 1, 2, 16.7, 71.8, None, None),
        # 8 3 9 10: P 2, passives 1, D 1, n 4. NPS 25.0. var = .75 - .0625 = .6875; / 4 = .171875;
        # sqrt = .41458; * 1.96 = .8126: 81.3.
        "sms": (4, 2, 1, 1, 25.0, 81.3, None, None),
    }


def test_figures_by_plan_count_the_plan_the_customer_had_when_asked(survey):
    breakdown = analytics.nps_breakdown(survey, Dimension.SEGMENT, START, END, attribute="plan")

    assert breakdown.attribute == "plan"
    assert figures(breakdown) == {
        # Not set (#9, a 7; and one unanswered invitation): NPS 0, no variance, 1 of 2 invitations.
        None: (1, 0, 1, 0, 0.0, 0.0, 2, 0.5),
        # 8 3 0: P 0, passives 1, D 2, n 3. NPS = -2/3 = -66.7. var = .6667 - .4444 = .2222; / 3 = .07407;
        # sqrt = .27217; * 1.96 = .5334: 53.3. 3 of 5 invitations.
        "free": (3, 0, 1, 2, -66.7, 53.3, 5, 0.6),
        # 10 9 6 9 10: P 4, D 1, n 5. NPS = 3/5 = 60.0. var = 1.0 - .36 = .64; / 5 = .128; sqrt = .35777;
        # * 1.96 = .7012: 70.1. 5 of 7 invitations: .7143.
        "pro": (5, 4, 0, 1, 60.0, 70.1, 7, 0.7143),
        # One 10: NPS 100, no variance. 1 of 2 invitations.
        "team": (1, 1, 0, 0, 100.0, 0.0, 2, 0.5),
    }


def test_figures_by_week_put_sunday_night_in_its_week_and_monday_midnight_in_the_next(survey):
    breakdown = analytics.nps_breakdown(survey, Dimension.PERIOD, START, END, period=Period.WEEK)

    assert figures(breakdown) == {
        # #1-#6: 10 9 8 3 10 6 (the 6 at Sunday 23:59:59): as by email above, 16.7 ±71.8; 6 of 8 invitations.
        "2026-03-02": (6, 3, 1, 2, 16.7, 71.8, 8, 0.75),
        # #7-#10: 9 0 7 10 (the 9 at Monday 00:00:00): as by SMS above, 25.0 ±81.3; 4 of 8 invitations.
        "2026-03-09": (4, 2, 1, 1, 25.0, 81.3, 8, 0.5),
    }


def test_figures_by_month_and_by_day(survey):
    by_month = analytics.nps_breakdown(
        survey, Dimension.PERIOD, date(2026, 2, 1), date(2026, 3, 31), period=Period.MONTH
    )
    # February: the 10 of Feb 27. March: the ten above and the 0 of Mar 16: P 5, passives 2, D 4, n 11.
    # NPS = 1/11 = 9.1; var = 9/11 - (1/11)^2 = .80992; / 11 = .07363; sqrt = .27135; * 1.96 = .5318: 53.2.
    assert figures(by_month) == {
        "2026-02-01": (1, 1, 0, 0, 100.0, 0.0, 1, 1.0),
        "2026-03-01": (11, 5, 2, 4, 9.1, 53.2, 17, 0.6471),
    }
    by_day = analytics.nps_breakdown(
        survey, Dimension.PERIOD, date(2026, 3, 8), date(2026, 3, 9), period=Period.DAY
    )
    assert {key: row[:4] + row[6:7] for key, row in figures(by_day).items()} == {
        "2026-03-08": (1, 0, 0, 1, 1),
        "2026-03-09": (1, 1, 0, 0, 2),
    }


def test_a_revised_score_and_a_new_answer_show_in_the_next_read(survey):
    assert analytics.nps_breakdown(survey, None, START, END).overall.nps == 20.0
    with survey.database.transaction() as session:
        # #8 (a 0 on Mar 10) becomes a 10: the day it was first answered is counted again.
        response = session.get(Response, survey.responses[8])
        response.score, response.revision, response.updated_at = 10, 2, utcnow()

    overall = analytics.nps_breakdown(survey, None, START, END).overall

    # 6 promoters, 2 passives, 2 detractors of 10: NPS 40.0.
    assert (overall.promoters, overall.detractors, overall.nps) == (6, 2, 40.0)


def test_reads_refreshing_at_once_count_each_answer_once(survey):
    analytics.nps_breakdown(survey, None, START, END)
    with survey.database.transaction() as session:
        for number in (1, 2, 3):  # two promoters and a passive become detractors
            session.get(Response, survey.responses[number]).score = 0
            session.get(Response, survey.responses[number]).updated_at = utcnow()

    with ThreadPoolExecutor(4) as pool:
        reads = [pool.submit(analytics.nps_breakdown, survey, None, START, END) for _ in range(4)]
        results = [read.result().overall for read in reads]

    # 10 responses: promoters #5 #7 #10, passive #9, detractors #1 #2 #3 #4 #6 #8: NPS (3 - 6) / 10 = -30.
    assert {(r.responses, r.promoters, r.passives, r.detractors, r.nps) for r in results} == {
        (10, 3, 1, 6, -30.0)
    }


def test_the_api_answers_json_and_csv(survey):
    client = staff_client(create_app(survey), survey.identity)

    answer = client.get("/v1/nps/breakdown?by=touchpoint&from=2026-03-02&to=2026-03-15")

    assert answer.status_code == 200
    body = answer.get_json()
    assert body["overall"]["nps"] == 20.0 and body["overall"]["margin_of_error"] == 54.0
    assert [(g["key"], g["nps"], g["response_rate"]) for g in body["groups"]] == [
        ("purchase", 33.3, 0.6667),
        ("support_call", 0.0, 0.5714),
    ]
    assert (body["from"], body["to"], body["by"]) == ("2026-03-02", "2026-03-15", "touchpoint")

    exported = client.get("/v1/nps/breakdown.csv?by=segment&attribute=plan&from=2026-03-02&to=2026-03-15")

    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["plan", *analytics_columns()]
    assert rows[1] == ["(not set)", "1", "0", "1", "0", "0.0", "0.0", "2", "0.5"]
    assert rows[-1] == ["all", "10", "5", "2", "3", "20.0", "54.0", "16", "0.625"]


def analytics_columns() -> list[str]:
    return [
        "responses",
        "promoters",
        "passives",
        "detractors",
        "nps",
        "margin_of_error",
        "invitations",
        "response_rate",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("by=segment&attribute=order_id", "attribute"),
        ("by=segment", "attribute"),
        ("from=2026-03-15&to=2026-03-02", "from"),
        ("by=period&period=year", "period"),
        ("by=color", "by"),
        ("from=2026-02-30", "from"),
        ("to=9999-12-31", "to"),
    ],
)
def test_a_bad_query_is_refused_naming_the_field(survey, query, field):
    client = staff_client(create_app(survey), survey.identity)

    answer = client.get(f"/v1/nps/breakdown?{query}")

    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert field in str(errors)


def scored(response_id: str, revision: int, label: str | None, phrases: list[str]) -> dict:
    sentiment = None
    if label is not None:
        sentiment = {
            "polarity": -0.6 if label == "negative" else 0.5,
            "subjectivity": 0.5,
            "label": label,
            "language": "en",
            "key_phrases": phrases,
            "analyzer": "test",
        }
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": "i",
            "revision": revision,
            "score": 3,
            "comment": "a comment" if label else None,
            "locale": "en",
            "touchpoint": "purchase",
            "channel": "email",
            "customer": {"customer_id": "c"},
            "submitted_at": utcnow().isoformat(),
            "sentiment": sentiment,
        },
    )


def test_sentiment_keeps_the_highest_revision_and_the_dashboard_counts_detractors_phrases(survey):
    ids = survey.responses
    with survey.database.transaction() as session:
        for number in (4, 6, 8, 1):
            session.get(Response, ids[number]).comment = "a comment"
    consume = analytics.record_response_sentiment
    consume(survey, scored(ids[4], 2, "negative", ["Long wait", "rude agent"]))
    consume(survey, scored(ids[4], 1, "positive", ["great"]))  # older, arriving late: ignored
    consume(survey, scored(ids[6], 1, "negative", ["long  wait"]))
    consume(survey, scored(ids[8], 1, "negative", ["broken parcel", "Long wait"]))
    consume(survey, scored(ids[1], 1, "positive", ["long wait"]))  # a promoter's: not a detractor's phrase
    repeated = scored(ids[8], 2, "neutral", [])
    consume(survey, repeated)
    consume(survey, repeated)  # the same event again changes nothing

    with survey.database.transaction() as session:
        kept = session.get(ResponseSentiment, ids[4])
        assert (kept.revision, kept.label) == (2, "negative")
        assert session.get(ResponseSentiment, ids[8]).label == "neutral"
        phrases = session.query(ResponseKeyPhrase).filter_by(response_id=ids[8]).count()
        assert phrases == 0
    board = analytics.dashboard(survey, START, END, Period.WEEK, None)

    assert board.detractor_phrases == [("long wait", 2), ("rude agent", 1)]
    assert dict(board.sentiment) == {"negative": 2, "neutral": 1, "positive": 1, "no comment": 6}
    assert board.overall.nps == 20.0 and board.attribute == "plan"


def test_the_dashboard_page_shows_the_figures_to_staff_only(survey):
    app = create_app(survey)

    page = staff_client(app, survey.identity).get("/admin/nps?from=2026-03-02&to=2026-03-15&period=week")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "+20.0" in html and "±54.0" in html and "62.5%" in html
    assert "<svg" in html and "NPS by touchpoint" in html
    # Everything is in the page: no script, stylesheet or image from anywhere else.
    assert "<script" not in html and "<link" not in html and "<img" not in html
    stranger = app.test_client().get("/admin/nps")
    assert stranger.status_code == 303 and "/sign-in" in stranger.headers["Location"]
    assert app.test_client().get("/v1/nps/breakdown").status_code == 401


def test_the_dashboard_shows_an_unknown_attribute_as_an_error(survey):
    page = staff_client(create_app(survey), survey.identity).get("/admin/nps?attribute=order_id")

    assert page.status_code == 422
    assert "Not a segment attribute" in page.get_data(as_text=True)


def test_segment_attributes_come_from_the_settings(postgres_url):
    settings = make_settings(postgres_url, nps_segment_attributes=("region",))
    with migrated_service("survey", settings) as runtime:
        seed(runtime)
        breakdown = analytics.nps_breakdown(runtime, Dimension.SEGMENT, START, END, attribute="region")
    # eu: #1 #2 #4 #6 #8 #10 (10 9 3 6 0 10): P 3, D 3: NPS 0. us: #3 #5 #7 #9 (8 10 9 7): P 2: NPS 50.
    assert {key: row[4] for key, row in figures(breakdown).items()} == {"eu": 0.0, "us": 50.0}


def test_the_clock_job_refreshes_the_rollup_and_reports_the_days_counted(survey):
    (job,) = [job for job in periodic_jobs(survey) if job.name == "survey.nps_rollup"]
    # First run: the whole rollup, every day with an answer or an invitation: Feb 27 and Mar 2 to 16.
    assert job.run() == 16
    assert job.run() == 0  # nothing changed since
    assert run_due_jobs([job]) == 0  # and a clock runs it without complaint


def test_a_breakdown_of_one_touchpoint_or_channel(survey):
    weeks = analytics.nps_breakdown(survey, Dimension.PERIOD, START, END, touchpoint="support_call")
    # Week 1: #4 (3) and #6 (6), of 3 invitations (with the unanswered one of Mar 7): NPS -100, no spread.
    # Week 2: #7 (9) and #10 (10), of 4 invitations (Mar 13 and 14 unanswered): NPS 100.
    assert figures(weeks) == {
        "2026-03-02": (2, 0, 0, 2, -100.0, 0.0, 3, 0.6667),
        "2026-03-09": (2, 2, 0, 0, 100.0, 0.0, 4, 0.5),
    }
    by_sms = analytics.nps_breakdown(survey, Dimension.TOUCHPOINT, START, END, channel="sms")
    # SMS answers: #3 (8) and a purchase; #4 (3), #7 (9), #10 (10) support calls. No invitation has a channel.
    assert {key: row[:4] + row[6:] for key, row in figures(by_sms).items()} == {
        "purchase": (1, 0, 1, 0, None, None),
        "support_call": (3, 2, 0, 1, None, None),
    }
    assert by_sms.overall.invitations is None


@pytest.mark.parametrize("database", ["postgres_url", "sqlite_url"])
def test_without_any_answer_the_dashboard_and_the_api_say_so(database, request):
    with migrated_service("survey", make_settings(request.getfixturevalue(database))) as runtime:
        client = staff_client(create_app(runtime), runtime.identity)

        page = client.get("/admin/nps")
        body = client.get("/v1/nps/breakdown?by=period").get_json()

    assert page.status_code == 200 and "No responses in this range." in page.get_data(as_text=True)
    assert body["groups"] == [] and body["overall"]["nps"] is None and body["overall"]["responses"] == 0


def test_a_segment_value_a_spreadsheet_would_run_is_exported_as_text(survey):
    with survey.database.transaction() as session:
        invitation = session.get(Response, survey.responses[9]).invitation_id
        session.get(Invitation, invitation).properties = {"plan": '=HYPERLINK("http://evil.example")'}
    analytics.rebuild_rollup(survey)  # the invitation's attributes were changed by hand, in the past
    client = staff_client(create_app(survey), survey.identity)

    exported = client.get("/v1/nps/breakdown.csv?by=segment&attribute=plan&from=2026-03-02&to=2026-03-15")

    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert ['\'=HYPERLINK("http://evil.example")', "1", "0", "1", "0", "0.0", "0.0", "1", "1.0"] in rows
