"""The survey service's Flask app."""

from __future__ import annotations

import functools

from flask import Flask

from shared.http import create_api
from shared.identity.web import install_access_control

from . import api, pages, privacy_api, service
from .analytics import api as analytics_api
from .analytics import pages as analytics_pages
from .delighted import api as delighted_api
from .runtime import SurveyRuntime
from .schemas import EVENT_TYPE_CHECK


def create_app(runtime: SurveyRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.survey"] = runtime
    app.extensions[EVENT_TYPE_CHECK] = functools.partial(service.is_surveyable_event_type, runtime)
    # Every route is for staff and machines unless its view is marked @public.
    install_access_control(app, runtime.identity, runtime.settings)
    survey_api = create_api(app, "survey")
    survey_api.register_blueprint(api.blp)
    survey_api.register_blueprint(analytics_api.blp)
    survey_api.register_blueprint(privacy_api.blp)
    delighted_api.register(app, survey_api)
    app.register_blueprint(pages.bp)
    app.register_blueprint(pages.admin_bp)
    app.register_blueprint(analytics_pages.bp)
    return app
