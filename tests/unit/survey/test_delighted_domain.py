"""The Delighted API's rules without Flask or a database: credentials, whole-number metrics, cursors, rate."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from services.survey.delighted.domain import (
    RateLimiter,
    api_key_from_basic,
    decode_cursor,
    encode_cursor,
    metrics,
    person_identifier,
    summary_of_counts,
)
from services.survey.delighted.importer import parse_time
from shared.nps import NpsSummary

KEY = "clk_0123456789abcdef_" + "x" * 43


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_the_python_clients_key_without_a_colon_and_the_others_with_one_are_the_same_key():
    assert api_key_from_basic(_basic(KEY)) == KEY  # delighted-python: base64(KEY)
    assert api_key_from_basic(_basic(KEY + ":")) == KEY  # node, ruby, curl -u KEY:


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer " + KEY, _basic(KEY + ":secret"), _basic(":"), "Basic not*base64", "Basic "],
)
def test_anything_else_is_no_key(header):
    assert api_key_from_basic(header) is None


def test_metrics_are_whole_numbers_rounded_half_up_as_delighted_gives_them():
    # Delighted's documented example: 32 promoters, 13 passives, 6 detractors.
    assert metrics(NpsSummary(51, 32, 13, 6)).__dict__ == {
        "nps": 51,
        "promoter_count": 32,
        "promoter_percent": 63,
        "passive_count": 13,
        "passive_percent": 25,
        "detractor_count": 6,
        "detractor_percent": 12,
        "response_count": 51,
    }
    # 1 of 8 is 12.5%: half up, not to even.
    assert metrics(NpsSummary(8, 1, 6, 1)).promoter_percent == 13
    assert metrics(NpsSummary(0, 0, 0, 0)).nps == 0


def test_counts_per_score_make_the_same_summary_as_the_scores_themselves():
    assert summary_of_counts({10: 3, 9: 2, 8: 1, 7: 1, 6: 2, 0: 1}) == NpsSummary(10, 5, 2, 3)
    assert summary_of_counts({}) == NpsSummary(0, 0, 0, 0)


def test_a_cursor_names_the_position_it_was_made_from_and_a_forged_one_nothing():
    moment = datetime(2026, 11, 26, 15, 30, 1, 123456, tzinfo=UTC)
    person_id = "0b6d7c1e-3c2f-4b8a-9f1e-2d4c6a8b0e1f"
    assert decode_cursor(encode_cursor(moment, person_id)) == (moment, person_id)
    assert decode_cursor("not a cursor") is None
    assert decode_cursor(base64.urlsafe_b64encode(b"1:'; drop table").decode()) is None


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("0b6d7c1e-3c2f-4b8a-9f1e-2d4c6a8b0e1f", "id", "0b6d7c1e-3c2f-4b8a-9f1e-2d4c6a8b0e1f"),
        ("email:jony@appleseed.com", "email", "jony@appleseed.com"),
        ("phone_number:+17132746524", "phone_number", "+17132746524"),
        ("email:jony@appleseed.com.json", "email", "jony@appleseed.com"),
    ],
)
def test_a_person_is_named_by_id_email_or_phone_number(text, kind, value):
    identifier = person_identifier(text)
    assert (identifier.kind, identifier.value) == (kind, value)


def test_a_key_past_its_rate_waits_for_the_next_minute_and_other_keys_do_not():
    now = [120.0]
    limiter = RateLimiter(2, lambda: now[0])
    assert limiter.allow("a") is None and limiter.allow("a") is None
    now[0] = 150.4
    assert limiter.allow("a") == 30  # whole seconds to 180
    assert limiter.allow("b") is None
    now[0] = 180.0
    assert limiter.allow("a") is None
    assert RateLimiter(0, lambda: 0.0).allow("a") is None  # 0: no limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1713418460", datetime(2024, 4, 18, 5, 34, 20, tzinfo=UTC)),
        ("2024-04-18 05:34:20 UTC", datetime(2024, 4, 18, 5, 34, 20, tzinfo=UTC)),
        ("2024-04-18T07:34:20+02:00", datetime(2024, 4, 18, 5, 34, 20, tzinfo=UTC)),
        ("2024-04-18T05:34:20Z", datetime(2024, 4, 18, 5, 34, 20, tzinfo=UTC)),
        ("2024-04-18 05:34:20", datetime(2024, 4, 18, 5, 34, 20, tzinfo=UTC)),
    ],
)
def test_an_exports_times_are_read_as_delighted_wrote_them(text, expected):
    assert parse_time(text) == expected


def test_an_export_is_recognised_by_its_columns_and_other_columns_are_properties():
    from services.survey.delighted.importer import ImportRefused, read_export

    kind, rows = read_export(
        "\ufeffResponse ID,Date,Email,Score,Comment,Property: Plan,Region,Tags\n"
        'r-1,2024-03-01 10:00:00 UTC,a@example.com,9,"Fast, kind",pro,EU,vip\n'
        ",,,,,,,\n"
    )
    assert kind == "responses" and len(rows) == 1  # the blank line is no row
    assert rows[0].values == {
        "id": "r-1",
        "created_at": "2024-03-01 10:00:00 UTC",
        "email": "a@example.com",
        "score": "9",
        "comment": "Fast, kind",
    }
    assert rows[0].properties == {"Plan": "pro", "Region": "EU"}
    assert read_export("Email,Unsubscribed At\n")[0] == "unsubscribes"
    assert read_export("Email,Bounced At\n")[0] == "bounces"
    assert read_export("Person ID,Email,Name\n")[0] == "people"
    with pytest.raises(ImportRefused):
        read_export("Order,Amount\n1,2\n")
