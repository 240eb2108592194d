"""The decider keeps staff's settings between batches until their version moves (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import delete, select, update

from services.survey import service
from services.survey.models import CrmEvent, MessageTemplateRow, TriggerRuleRow, outbox
from services.survey.schemas import CrmEventSchema, TriggerRuleSchema
from tests.conftest import crm_event, make_settings, migrated_service, statements_sent

SETTINGS_TABLES = ("survey_trigger_rules", "survey_message_templates", "survey_brand")
TEMPLATE = {
    "nps_question": "Would you recommend {brand}?",
    "follow_up_question": "Why?",
    "sms_text": "Would you recommend {brand}? Reply 0-10. STOP to opt out.",
    "email_subject": "{brand} asks one question",
}


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def survey(request) -> Iterator[Any]:
    with migrated_service("survey", make_settings(request.getfixturevalue(request.param))) as runtime:
        yield runtime


def decide(survey, event_id: str) -> dict[str, Any] | None:
    """Accept and decide one purchase event: the message of the invitation it asked for; None: not invited."""
    event = crm_event(event_id, external_id=f"customer-{event_id}")
    service.accept_crm_event(survey, CrmEventSchema().load(event))
    assert service.decide_received_events(survey) == 1
    with survey.database.transaction() as session:
        decided = session.scalars(select(CrmEvent).where(CrmEvent.external_id == event_id)).one()
        payloads = session.scalars(
            select(outbox.c.payload).where(outbox.c.event_type == "invitation.requested")
        )
        messages = [
            p["data"]["message"] for p in payloads if p["data"]["invitation_id"] == decided.invitation_id
        ]
    return messages[0] if decided.invitation_id else None


def turn_off_purchases(survey) -> None:
    touchpoint = service.get_trigger_rule(survey, "purchase.completed")["touchpoint"]
    rule = TriggerRuleSchema().load({"touchpoint": touchpoint, "enabled": False})
    service.put_trigger_rule(survey, "purchase.completed", rule)


def version(survey) -> int:
    with survey.unit_of_work() as uow:
        return uow.settings_version()


def settings_read(statements: list[str]) -> list[str]:
    return [s for s in statements if any(f"FROM {table}" in s for table in SETTINGS_TABLES)]


def test_each_change_to_a_rule_a_template_or_the_brand_moves_the_version_whatever_writes_it(survey):
    seen = [version(survey)]
    service.put_brand(survey, "Acme", None)
    seen.append(version(survey))
    service.put_template(survey, "purchase", "en", TEMPLATE)
    seen.append(version(survey))
    turn_off_purchases(survey)
    seen.append(version(survey))
    with (
        survey.database.transaction() as session
    ):  # written by hand, not through the service: moved all the same
        session.execute(update(TriggerRuleRow).values(priority=7))
    seen.append(version(survey))
    service.reset_template(survey, "purchase", "en")
    seen.append(version(survey))
    with survey.database.transaction() as session:
        session.execute(delete(TriggerRuleRow))
    seen.append(version(survey))
    assert seen == sorted(set(seen)), seen


def test_a_batch_decides_with_the_settings_of_its_moment_read_only_when_they_changed(survey):
    engine = survey.database.engine
    with statements_sent(engine) as statements:
        shipped = decide(survey, "evt-1")
    assert settings_read(statements), "the first batch reads the settings"
    with statements_sent(engine) as statements:
        assert decide(survey, "evt-2") == shipped | {"answer_url": ANY}
    assert settings_read(statements) == []  # unchanged: kept from the batch before

    service.put_brand(survey, "Acme", None)
    service.put_template(survey, "purchase", "en", TEMPLATE)
    with statements_sent(engine) as statements:
        assert decide(survey, "evt-3")["subject"] == "Acme asks one question"
    assert settings_read(statements)

    with survey.database.transaction() as session:  # a template deleted by hand: the shipped one again
        session.execute(delete(MessageTemplateRow))
    assert decide(survey, "evt-4")["subject"] == shipped["subject"]

    turn_off_purchases(survey)
    assert decide(survey, "evt-5") is None  # the rule turned off is followed at once
