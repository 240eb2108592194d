"""The dispatch service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.settings import Settings

from . import api, pages
from .bootstrap import DispatchRuntime, bootstrap


def create_app(runtime: DispatchRuntime | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.dispatch"] = runtime or bootstrap(Settings.from_env())
    rest = create_api(app, "dispatch")
    rest.register_blueprint(api.blp)
    rest.register_blueprint(api.webhooks)
    app.register_blueprint(pages.bp)
    return app
