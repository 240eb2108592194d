"""The survey service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.identity.web import install_access_control

from . import api, pages
from .runtime import SurveyRuntime


def create_app(runtime: SurveyRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.survey"] = runtime
    # Every route is for staff and machines unless its view is marked @public.
    install_access_control(app, runtime.identity, runtime.settings)
    create_api(app, "survey").register_blueprint(api.blp)
    app.register_blueprint(pages.bp)
    return app
