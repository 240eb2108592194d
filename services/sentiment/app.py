"""The sentiment service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.identity.web import install_access_control

from . import api
from .runtime import SentimentRuntime


def create_app(runtime: SentimentRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.sentiment"] = runtime
    # Every route is for staff and machines unless its view is marked @public.
    install_access_control(app, runtime.identity, runtime.settings)
    create_api(app, "sentiment").register_blueprint(api.blp)
    return app
