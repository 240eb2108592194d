from __future__ import annotations

import pytest

from services.dispatch import routes
from services.dispatch.app import create_app

from .fakes import FakeDispatchUnitOfWork, fake_runtime


def test_url_fills_the_rules_parts_and_appends_the_query():
    assert routes.UNSUBSCRIBE.url("https://x.test", delivery_id="a/b") == "https://x.test/unsubscribe/a%2Fb"
    assert (
        routes.TWILIO_STATUS.url("https://x.test", {routes.TWILIO_STATUS_REFERENCE: "d 1"})
        == "https://x.test/webhooks/twilio/status?delivery_id=d+1"
    )


def test_url_without_a_value_for_a_part_is_refused():
    with pytest.raises(ValueError):
        routes.UNSUBSCRIBE.url("https://x.test")


def test_the_app_serves_every_route_at_its_rule():
    app = create_app(fake_runtime(FakeDispatchUnitOfWork()))
    served = {rule.rule for rule in app.url_map.iter_rules()}
    public = (routes.UNSUBSCRIBE, routes.TWILIO_INBOUND_SMS, routes.TWILIO_STATUS, routes.SENDGRID_EVENTS)
    assert {route.rule for route in public} <= served
