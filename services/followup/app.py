"""The followup service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.settings import Settings

from . import api
from .bootstrap import FollowupRuntime, bootstrap


def create_app(runtime: FollowupRuntime | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.followup"] = runtime or bootstrap(Settings.from_env())
    create_api(app, "followup").register_blueprint(api.blp)
    return app
