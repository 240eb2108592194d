"""The sentiment service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.settings import Settings

from . import api
from .bootstrap import SentimentRuntime, bootstrap


def create_app(runtime: SentimentRuntime | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.sentiment"] = runtime or bootstrap(Settings.from_env())
    create_api(app, "sentiment").register_blueprint(api.blp)
    return app
