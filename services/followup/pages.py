"""The success team's pages: the queues and a task's page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "pages", __name__, template_folder="templates", static_folder="static", static_url_path="/static/followup"
)
