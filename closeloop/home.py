"""The landing page of the embedded process: where a newcomer starts."""

from __future__ import annotations

from flask import Flask, render_template

from shared.identity.store import IdentityStore
from shared.identity.web import install_access_control
from shared.settings import Settings


def create_home_app(settings: Settings, identity: IdentityStore) -> Flask:
    """The landing page is for staff: it links to their pages and shows the development secret."""
    app = Flask(__name__, static_folder=None)
    install_access_control(app, identity, settings)

    @app.get("/")
    def home():
        return render_template(
            "home.html",
            dev_secret=settings.webhook_secret if settings.uses_development_secret else None,
            sandbox=settings.transport == "sandbox",
        )

    return app
