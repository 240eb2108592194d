"""Staff endpoints for one customer's personal data: export it, erase it everywhere."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from shared.identity.web import requires
from shared.personal_data import PersonalDataKeysSchema
from shared.principal import Role

from . import privacy

blp = Blueprint("privacy", __name__, url_prefix="/v1/customers", description="Personal data: export, erasure")


class SurveyPersonalDataSchema(Schema):
    service = fields.String()
    tables = fields.Dict(keys=fields.String(), values=fields.List(fields.Dict()))
    keys = fields.Nested(
        PersonalDataKeysSchema,
        metadata={
            "description": "Post these to POST /v1/personal-data/dispatch and /followup for their part."
        },
    )


class ErasureSchema(Schema):
    customer_id = fields.String(
        allow_none=True,
        metadata={
            "description": "null when they were not a customer yet: only their events waiting for a "
            "decision were erased (nothing else held anything about them)."
        },
    )
    erased = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "Rows deleted in survey, by kind; the other services follow (customer.erased)."
        },
    )


def _runtime():
    return current_app.extensions["closeloop.survey"]


@blp.route("/<external_id>/export")
class CustomerExport(MethodView):
    @requires(Role.MANAGER)
    @blp.response(200, SurveyPersonalDataSchema)
    @blp.alt_response(403, description="Managers and admins only.")
    def get(self, external_id):
        """Everything survey holds about a customer; ``closeloop export-customer`` asks every service."""
        runtime = _runtime()
        return privacy.export_customer(runtime, privacy.customer_id_for(runtime, external_id))


@blp.route("/<external_id>/erase")
class CustomerErasure(MethodView):
    @requires(Role.MANAGER)
    @blp.response(202, ErasureSchema)
    @blp.alt_response(403, description="Managers and admins only.")
    def post(self, external_id):
        """Erase a customer: survey's rows at once, every other service's when it gets customer.erased."""
        customer_id, erased = privacy.erase_by_external_id(_runtime(), external_id)
        return {"customer_id": customer_id, "erased": erased}
