"""followup's part of a customer's personal data, for staff: the keys come from survey's export."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.identity.web import requires
from shared.personal_data import PersonalDataKeysSchema, PersonalDataSchema
from shared.principal import Role

from . import privacy

blp = Blueprint("personal_data", __name__, url_prefix="/v1/personal-data", description="Personal data export")


@blp.route("/followup")
class PersonalData(MethodView):
    @requires(Role.MANAGER)
    @blp.arguments(PersonalDataKeysSchema)
    @blp.response(200, PersonalDataSchema)
    @blp.alt_response(403, description="Managers and admins only.")
    def post(self, keys):
        """Everything followup holds about a customer, by the ``keys`` survey's export gives."""
        runtime = current_app.extensions["closeloop.followup"]
        return {"service": "followup", "tables": privacy.export_customer(runtime, keys)}
