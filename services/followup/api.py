"""The followup service's HTTP API: the success team's queue."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from . import service
from .schemas import ReferralRequestSchema, TaskQuerySchema, TaskSchema

blp = Blueprint("tasks", __name__, url_prefix="/v1", description="Follow-up tasks and referral requests")


def _runtime():
    return current_app.extensions["closeloop.followup"]


@blp.route("/tasks")
class Tasks(MethodView):
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, TaskSchema(many=True))
    def get(self, query):
        """Follow-up tasks, most urgent first, with each score, comment and its sentiment."""
        return service.list_tasks(_runtime(), query["status"], query["limit"])


@blp.route("/referral-requests")
class ReferralRequests(MethodView):
    @blp.response(200, ReferralRequestSchema(many=True))
    def get(self):
        """Promoters to ask for a referral, newest first."""
        return service.list_referral_requests(_runtime())
