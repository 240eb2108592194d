"""Pages people see: the sandbox outbox (embedded mode) and the unsubscribe page."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from shared.channels import Channel
from shared.http import NotFoundError
from shared.identity.web import public
from shared.locales import localized

from . import routes, service
from .domain import UNSUBSCRIBE_PAGE_TEXTS
from .runtime import DispatchRuntime
from .sandbox import latest_messages, message_for, replies_by_delivery, waiting_deliveries

bp = Blueprint("pages", __name__, template_folder="templates")


def _runtime() -> DispatchRuntime:
    return current_app.extensions["closeloop.dispatch"]


@bp.get("/sandbox")
def sandbox():
    runtime = _runtime()
    if runtime.settings.transport != "sandbox":
        abort(404)
    return render_template(
        "dispatch/sandbox.html",
        messages=latest_messages(runtime.database),
        replies=replies_by_delivery(runtime.database),
        waiting=waiting_deliveries(runtime.database),
    )


@bp.post("/sandbox/sms/<delivery_id>/reply")
def sandbox_sms_reply(delivery_id: str):
    """Stands in for Twilio's inbound webhook: the reply goes through the same use case."""
    runtime = _runtime()
    if runtime.settings.transport != "sandbox":
        abort(404)
    message = message_for(runtime.database, delivery_id)
    body = (request.form.get("body") or "").strip()
    if message is None or message.channel not in (Channel.SMS, Channel.WHATSAPP):
        abort(404)
    sender = f"whatsapp:{message.to}" if message.channel == Channel.WHATSAPP else message.to
    if body:
        service.receive_sms(runtime, "SMsandbox" + secrets.token_hex(15), sender, body[:1600])
    return redirect(url_for("pages.sandbox") + f"#delivery-{delivery_id}", code=303)


@bp.get(routes.UNSUBSCRIBE.rule)
@public  # the customer's page, reached by the unguessable delivery id in the link
def unsubscribe_page(delivery_id: str):
    # A GET only shows the page: scanners fetch every link in a message (RFC 8058).
    try:
        page = service.unsubscribe_page(_runtime(), delivery_id)
    except NotFoundError:
        abort(404)
    return _unsubscribe_page(page)


@bp.post(routes.UNSUBSCRIBE.rule)
@public
def unsubscribe(delivery_id: str):
    """The RFC 8058 one-click POST from a mail client, or the page's button."""
    try:
        service.unsubscribe(_runtime(), delivery_id)
    except NotFoundError:
        abort(404)
    if request.form.get("List-Unsubscribe") == "One-Click":
        return "", 204
    return _unsubscribe_page(service.unsubscribe_page(_runtime(), delivery_id))


def _unsubscribe_page(page: service.UnsubscribePage) -> str:
    words = {
        key: text.format(brand=page.brand, address=page.masked_address)
        for key, text in localized(UNSUBSCRIBE_PAGE_TEXTS, page.locale).items()
    }
    return render_template("dispatch/unsubscribe.html", page=page, words=words)
