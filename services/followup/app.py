"""The followup service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api

from . import api
from .runtime import FollowupRuntime


def create_app(runtime: FollowupRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.followup"] = runtime
    create_api(app, "followup").register_blueprint(api.blp)
    return app
