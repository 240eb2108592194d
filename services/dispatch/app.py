"""The dispatch service's Flask app."""

from __future__ import annotations

from flask import Flask

from shared.http import create_api
from shared.identity.web import install_access_control

from . import api, pages, personal_data_api
from .runtime import DispatchRuntime


def create_app(runtime: DispatchRuntime) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.extensions["closeloop.dispatch"] = runtime
    # Every route is for staff and machines unless its view is marked @public.
    install_access_control(app, runtime.identity, runtime.settings)
    rest = create_api(app, "dispatch")
    rest.register_blueprint(api.blp)
    rest.register_blueprint(api.webhooks)
    rest.register_blueprint(personal_data_api.blp)
    app.register_blueprint(pages.bp)
    return app
