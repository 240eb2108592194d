from __future__ import annotations

import pytest

from shared.nps import NpsCategory, nps_category, nps_summary


@pytest.mark.parametrize(
    ("score", "category"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter")],
)
def test_category_of_a_score(score, category):
    assert nps_category(score) == NpsCategory(category)


@pytest.mark.parametrize("score", [-1, 11])
def test_a_score_outside_zero_to_ten_has_no_category(score):
    with pytest.raises(ValueError):
        nps_category(score)


def test_nps_is_promoters_share_minus_detractors_share():
    summary = nps_summary([10, 9, 8, 7, 6, 0])
    assert (summary.promoters, summary.passives, summary.detractors) == (2, 2, 2)
    assert summary.nps == 0.0
    assert nps_summary([10, 10, 3]).nps == 33.3
    assert nps_summary([]).nps is None
