"""NPS analytics' domain math, checked against calculations done by hand, and the dashboard's charts."""

from __future__ import annotations

from datetime import date

import pytest

from services.survey.analytics import charts
from services.survey.analytics.domain import (
    NpsFigures,
    Period,
    combined,
    default_range,
    net_promoter_score,
    nps_margin_of_error,
    period_start,
    response_rate,
)
from shared.settings import Settings


def test_nps_is_promoters_share_minus_detractors_share_in_points():
    # 5 promoters, 2 passives, 3 detractors of 10: 50% - 30% = 20 points.
    assert net_promoter_score(5, 3, 10) == pytest.approx(20.0)
    assert net_promoter_score(0, 0, 0) is None


def test_margin_of_error_is_1_96_times_the_standard_error_of_the_plus_one_zero_minus_one_scores():
    # p = .5, d = .3: var = .5 + .3 - (.5 - .3)^2 = .76; var / n = .076; sqrt = .275681; * 1.96 = .540335.
    assert nps_margin_of_error(5, 3, 10) == pytest.approx(54.0335, abs=1e-4)
    # 2 promoters, 2 detractors of 4: var = 1 - 0 = 1; sqrt(1 / 4) = .5; * 1.96 = .98: 98 points.
    assert nps_margin_of_error(2, 2, 4) == pytest.approx(98.0)
    # Everyone a promoter: no spread, no margin.
    assert nps_margin_of_error(7, 0, 7) == 0.0
    assert nps_margin_of_error(0, 0, 0) is None


def test_margin_of_error_shrinks_with_the_square_root_of_the_responses():
    # The same shares with 100 times the responses: a tenth of the margin.
    assert nps_margin_of_error(500, 300, 1000) == pytest.approx(nps_margin_of_error(5, 3, 10) / 10)


def test_response_rate_is_responses_per_invitation_and_unknown_without_invitations():
    assert response_rate(10, 16) == 0.625
    assert response_rate(3, 0) is None
    assert response_rate(3, None) is None


def test_figures_round_for_people():
    # 3 promoters, 2 passives, 1 detractor of 6: NPS 33.33; margin: p = .5, d = .1667, var = .5556,
    # / 6 = .09259, sqrt = .30429, * 1.96 = .59641: 59.6; 6 of 9 invitations: .6667.
    figures = NpsFigures(responses=6, promoters=3, passives=2, detractors=1, invitations=9)
    assert (figures.nps, figures.margin_of_error, figures.response_rate) == (33.3, 59.6, 0.6667)
    empty = NpsFigures(0, 0, 0, 0, 0)
    assert (empty.nps, empty.margin_of_error, empty.response_rate) == (None, None, None)


def test_combined_groups_add_their_counts_and_lose_invitations_if_one_lacks_them():
    a, b = NpsFigures(6, 3, 2, 1, 9), NpsFigures(4, 2, 0, 2, 7)
    assert combined([a, b]) == NpsFigures(10, 5, 2, 3, 16)
    assert combined([a, NpsFigures(4, 2, 0, 2, None)]).invitations is None


@pytest.mark.parametrize(
    ("day", "period", "start"),
    [
        (date(2026, 3, 8), Period.WEEK, date(2026, 3, 2)),  # a Sunday: the Monday before
        (date(2026, 3, 9), Period.WEEK, date(2026, 3, 9)),  # a Monday: itself
        (date(2026, 1, 1), Period.WEEK, date(2025, 12, 29)),  # across a year
        (date(2026, 3, 31), Period.MONTH, date(2026, 3, 1)),
        (date(2026, 3, 31), Period.DAY, date(2026, 3, 31)),
    ],
)
def test_period_start(day, period, start):
    assert period_start(day, period) == start


def test_the_default_range_is_the_last_90_days_today_included():
    assert default_range(date(2026, 3, 31)) == (date(2026, 1, 1), date(2026, 3, 31))


def test_charts_escape_what_customers_and_crms_wrote():
    bars = [charts.Bar("<script>alert(1)</script>", 10.0, 5.0, 3)]
    svg = str(charts.nps_bars(bars, "NPS by plan"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    phrases = str(charts.count_bars([('"rude" & <slow>', 2)], "phrases"))
    assert "&lt;slow&gt;" in phrases and "&amp;" in phrases


def test_trend_draws_a_band_for_the_margin_and_a_point_per_period():
    svg = str(charts.trend([charts.Point("Mar 2", 16.7, 71.8, 6), charts.Point("Mar 9", 25.0, 81.3, 4)]))
    assert svg.count("<circle") == 2 and "<polygon" in svg and "<polyline" in svg
    assert "Mar 9: NPS +25 ±81.3, 4 responses" in svg


def test_empty_charts_say_so():
    assert "No responses" in str(charts.trend([]))
    assert "No responses" in str(charts.nps_bars([], "NPS by channel"))
    assert "No invitations" in str(charts.rate_bars([charts.Bar("Email", 1.0, 0.0, 1, None)], "rate"))
    assert "No responses" in str(charts.stacked([("Promoters", 0, charts.PROMOTER)], "split"))


def test_signed_figures():
    assert [charts.signed(v) for v in (20.0, -6.5, 0.0)] == ["+20", "-6.5", "0"]


def test_segment_attributes_are_read_from_the_environment():
    assert Settings.from_env({}).nps_segment_attributes == ("plan", "region")
    assert Settings.from_env({"NPS_SEGMENT_ATTRIBUTES": " tier, country ,tier"}).nps_segment_attributes == (
        "tier",
        "country",
    )
    assert Settings.from_env({"NPS_SEGMENT_ATTRIBUTES": ""}).nps_segment_attributes == ()
    with pytest.raises(ValueError, match="NPS_SEGMENT_ATTRIBUTES"):
        Settings.from_env({"NPS_SEGMENT_ATTRIBUTES": "plan,'; drop"})
