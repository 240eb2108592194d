"""Opt-outs reach survey, in the embedded system: a customer who unsubscribes (dispatch) or texts STOP is
skipped by survey's next decision with the reason "opted out of every channel"; START lets them be asked."""

from __future__ import annotations

import pytest

from closeloop.system import build_system
from services.dispatch.sandbox import latest_messages
from tests.conftest import crm_event, make_settings, staff_client, wait_for
from tests.survey_intake import post_and_wait_for_decision

pytestmark = pytest.mark.e2e


@pytest.fixture
def system(sqlite_url):
    running = build_system(make_settings(sqlite_url))
    running.start()
    yield running
    running.stop()


def post_event(system, event):
    """Post a signed event and wait for the survey clock's decision about it."""
    return post_and_wait_for_decision(system, event)


def sent_to(system, address):
    return [m for m in latest_messages(system.runtimes["dispatch"].database) if m.to == address]


def opted_out_channels(system, external_id):
    survey = staff_client(system.apps["survey"], system.runtimes["survey"].identity)
    return survey.get(f"/v1/customers/{external_id}").get_json()["opted_out_channels"]


def test_an_unsubscribed_customer_is_skipped_as_opted_out_of_every_channel(system):
    assert post_event(system, crm_event("order-1"))["decision"] == "invited"
    email = wait_for(lambda: sent_to(system, "jane@example.com"), what="the invitation email")[0]

    one_click = (
        system.apps["dispatch"]
        .test_client()
        .post(f"/unsubscribe/{email.delivery_id}", data={"List-Unsubscribe": "One-Click"})
    )
    assert one_click.status_code == 204
    wait_for(lambda: opted_out_channels(system, "crm-42") == ["email"], what="survey hearing of the opt-out")

    outcome = post_event(system, crm_event("order-2"))

    assert (outcome["decision"], outcome["reason_code"], outcome["reason"]) == (
        "skipped",
        "opted_out",
        "opted out of every channel",
    )
    survey = staff_client(system.apps["survey"], system.runtimes["survey"].identity)
    recorded = survey.get(f"/v1/events/{outcome['event_id']}").get_json()
    assert recorded["reason"] == "opted out of every channel"


def test_stop_then_start_by_sms(system):
    phone = "+15555550100"
    sms_only = dict(external_id="crm-sms", email=None, phone=phone, preferred_channel="sms")
    assert post_event(system, crm_event("order-1", **sms_only))["decision"] == "invited"
    sms = wait_for(lambda: sent_to(system, phone), what="the invitation SMS")[0]
    dispatch = staff_client(system.apps["dispatch"], system.runtimes["dispatch"].identity)

    dispatch.post(f"/sandbox/sms/{sms.delivery_id}/reply", data={"body": "STOP"})
    wait_for(lambda: opted_out_channels(system, "crm-sms") == ["sms"], what="survey hearing of STOP")
    assert post_event(system, crm_event("order-2", **sms_only))["reason_code"] == "opted_out"

    dispatch.post(f"/sandbox/sms/{sms.delivery_id}/reply", data={"body": "START"})
    wait_for(lambda: opted_out_channels(system, "crm-sms") == [], what="survey hearing of START")
    # Asked within the quarantine of the first invitation: no longer an opt-out, the quarantine speaks.
    assert (
        post_event(system, crm_event("order-3", **sms_only))["reason_code"] == "quarantine_after_invitation"
    )
