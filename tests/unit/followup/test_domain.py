from datetime import timedelta

import pytest

from services.followup import domain
from shared.clock import utcnow

NOW = utcnow()


@pytest.mark.parametrize(
    ("score", "group"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter")],
)
def test_nps_groups(score, group):
    assert domain.nps_group(score) == group


def test_score_out_of_range_is_refused():
    with pytest.raises(ValueError):
        domain.nps_group(11)


def test_very_low_score_is_due_within_a_day():
    urgency = domain.task_urgency(2, None, NOW)
    assert urgency.priority == "high" and urgency.due_at == NOW + timedelta(hours=24)


def test_negative_comment_raises_priority_of_a_mild_detractor():
    assert domain.task_urgency(6, "negative", NOW).priority == "high"
    normal = domain.task_urgency(6, "neutral", NOW)
    assert normal.priority == "normal" and normal.due_at == NOW + timedelta(hours=72)
