"""The survey service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.settings import Settings

from . import api, pages
from .bootstrap import SurveyRuntime, bootstrap


def create_app(runtime: SurveyRuntime | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.survey"] = runtime or bootstrap(Settings.from_env())
    create_api(app, "survey").register_blueprint(api.blp)
    app.register_blueprint(pages.bp)
    return app
