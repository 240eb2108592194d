"""The landing page of the embedded process: where a newcomer starts."""

from __future__ import annotations

from flask import Flask, render_template

from shared.settings import Settings


def create_home_app(settings: Settings) -> Flask:
    app = Flask(__name__, static_folder=None)

    @app.get("/")
    def home():
        return render_template(
            "home.html",
            dev_secret=settings.webhook_secret if settings.uses_development_secret else None,
            sandbox=settings.transport == "sandbox",
        )

    return app
