"""The followup service's Flask app."""

from __future__ import annotations

import functools

from flask import Flask

from shared.http import create_api
from shared.identity.web import install_access_control, register_identity_pages
from shared.metrics import register_gauges

from . import api, pages, personal_data_api, service
from .runtime import FollowupRuntime


def create_app(runtime: FollowupRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.followup"] = runtime
    # Every route is for staff and machines unless its view is marked @public.
    install_access_control(app, runtime.identity, runtime.settings)
    api_spec = create_api(app, "followup")
    api_spec.register_blueprint(api.blp)
    api_spec.register_blueprint(api.webhooks_blp)
    api_spec.register_blueprint(personal_data_api.blp)
    # The success team's home: sign-in, sign-out and the admins' API keys are served here.
    register_identity_pages(app, runtime.identity, landing_path="/")
    app.register_blueprint(pages.bp)
    register_gauges("followup", "tasks", functools.partial(service.task_gauges, runtime))
    return app
