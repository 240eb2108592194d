"""The survey service's HTTP API: CRM events in, NPS out."""

from __future__ import annotations

import logging
from dataclasses import asdict

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.http import OPEN_TO_ALL, problem
from shared.identity.web import public
from shared.signing import WebhookVerificationError, verify

from . import service
from .schemas import CrmEventSchema, EventOutcomeSchema, FollowUpResultsSchema, NpsQuerySchema, NpsSchema

log = logging.getLogger(__name__)

blp = Blueprint("events", __name__, url_prefix="/v1", description="CRM events and NPS analytics")


def _runtime():
    return current_app.extensions["closeloop.survey"]


@blp.before_request
def _check_signature():
    # Only the CRM event intake is signed; analytics are read by staff (sign-in comes with the web app).
    if request.endpoint != "events.CrmEvents":
        return None
    try:
        verify(_runtime().settings.webhook_secret, request.headers, request.get_data())
    except WebhookVerificationError as error:
        log.info("refused CRM event: %s", error)
        return problem(401, "Unauthorized", str(error))
    return None


@blp.route("/events")
@public  # signed by the CRM (Standard Webhooks), checked above
class CrmEvents(MethodView):
    @blp.arguments(CrmEventSchema)
    @blp.response(202, EventOutcomeSchema, description="Accepted: the outcome says whether a survey follows.")
    @blp.alt_response(200, schema=EventOutcomeSchema, description="This event id was accepted before.")
    @blp.alt_response(401, description="Missing or wrong Standard Webhooks signature.")
    @blp.doc(**OPEN_TO_ALL)
    def post(self, event):
        """Receive a signed CRM event (purchase.completed, support_call.ended, site.visited)."""
        outcome = service.accept_crm_event(_runtime(), event)
        return asdict(outcome), 200 if outcome.duplicate else 202


@blp.route("/nps")
class Nps(MethodView):
    @blp.arguments(NpsQuerySchema, location="query")
    @blp.response(200, NpsSchema)
    def get(self, query):
        """Net Promoter Score over all responses, or one touchpoint's."""
        summary = service.nps(_runtime(), query["touchpoint"])
        return {**asdict(summary), "nps": summary.nps}


@blp.route("/nps/follow-ups")
class FollowUpResults(MethodView):
    @blp.response(200, FollowUpResultsSchema)
    def get(self):
        """Follow-up surveys after resolved followup tasks: how many were answered, how many scored higher."""
        return asdict(service.follow_up_results(_runtime()))
