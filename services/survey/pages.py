"""The customer's answer page (reached from a score link, works without JavaScript) and the staff's
trigger rules page."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from shared.http import NotFoundError
from shared.identity.web import public, requires
from shared.locales import localized
from shared.principal import Role
from shared.validation import current_limits

from . import service
from .domain import TOUCHPOINTS, ConditionOperator
from .schemas import EVENT_TYPE_PATTERN, TriggerRuleSchema

bp = Blueprint("answers", __name__, template_folder="templates")
admin_bp = Blueprint("survey_admin", __name__, template_folder="templates", url_prefix="/admin")

PAGE_TEXTS = {
    "en": {
        "title": "Your feedback",
        "your_score": "Your score",
        "comment_label": "What is the main reason for your score? (optional)",
        "send": "Send",
        "thanks_title": "Thank you!",
        "thanks_body": "Your answer has been saved. We read every comment.",
        "answered": "You have already answered; you can change your answer below.",
        "invalid_score": "Please choose a score from 0 to 10.",
        "not_found": "This survey link is not valid.",
        "expired": "This survey has closed; thank you all the same.",
        "comment_cut": "Your comment was longer than {limit} characters; we kept the first {limit}.",
    },
    "tr": {
        "title": "Görüşünüz",
        "your_score": "Puanınız",
        "comment_label": "Bu puanı vermenizin ana nedeni nedir? (isteğe bağlı)",
        "send": "Gönder",
        "thanks_title": "Teşekkürler!",
        "thanks_body": "Yanıtınız kaydedildi. Her yorumu okuyoruz.",
        "answered": "Bu ankete zaten yanıt verdiniz; yanıtınızı aşağıda değiştirebilirsiniz.",
        "invalid_score": "Lütfen 0 ile 10 arasında bir puan seçin.",
        "not_found": "Bu anket bağlantısı geçerli değil.",
        "expired": "Bu anket kapandı; yine de teşekkür ederiz.",
        "comment_cut": "Yorumunuz {limit} karakterden uzundu; ilk {limit} karakteri kaydettik.",
    },
}


def _runtime():
    return current_app.extensions["closeloop.survey"]


def _score_from(value: str | None) -> int | None:
    # ASCII digits only: str.isdigit() also takes "²", "１" and "٣".
    if value is None or not (value.strip().isascii() and value.strip().isdigit()):
        return None
    score = int(value)
    return score if 0 <= score <= 10 else None


@bp.get("/s/<token>")
@public  # the customer's page, reached by the unguessable token in the link
def show_answer_page(token: str):
    clicked = _score_from(request.args.get("score"))
    try:
        page = service.answer_page(_runtime(), token, clicked, request.headers.get("User-Agent"))
    except NotFoundError:
        abort(404)
    return render_template("survey/answer.html", page=page, t=localized(PAGE_TEXTS, page.locale), error=None)


@bp.post("/s/<token>")
@public
def submit_answer_page(token: str):
    score = _score_from(request.form.get("score"))
    comment = request.form.get("comment") or ""
    # MAX_COMMENT_CHARS: a longer comment is cut, and the thank-you page says so.
    comment_limit = current_limits().comment_chars
    comment_cut = len(comment) > comment_limit
    comment = comment[:comment_limit]
    try:
        if score is None:
            page = service.answer_page(_runtime(), token, None, None)
            texts = localized(PAGE_TEXTS, page.locale)
            error = None if page.expired else texts["invalid_score"]
            return render_template("survey/answer.html", page=page, t=texts, error=error), 422
        page = service.submit_answer(_runtime(), token, score, comment)
    except NotFoundError:
        abort(404)
    if page.expired:  # nothing was saved: the page says the survey has closed
        return render_template(
            "survey/answer.html", page=page, t=localized(PAGE_TEXTS, page.locale), error=None
        ), 410
    return render_template(
        "survey/thanks.html",
        page=page,
        t=localized(PAGE_TEXTS, page.locale),
        comment_cut=comment_limit if comment_cut else None,
    )


# --- Trigger rules, for staff -------------------------------------------------------------------------

RULE_NUMBERS = (
    "delay_hours",
    "quarantine_after_invitation_days",
    "quarantine_after_answer_days",
    "priority",
    "sampling_rate",
    "max_event_age_days",
)


@admin_bp.get("/trigger-rules")
def trigger_rules() -> tuple[str, int]:
    """Every rule in force; ``?edit=<event type>`` opens that rule in the form (unknown: a new one)."""
    editing = request.args.get("edit")
    form = None
    if editing:
        try:
            form = _form_values(service.get_trigger_rule(_runtime(), editing))
        except NotFoundError:
            form = {"event_type": editing, "touchpoint": "purchase", "enabled": True, "conditions": ""}
    return _rules_page(form=form)


@admin_bp.post("/trigger-rules")
@requires(Role.MANAGER)
def save_trigger_rule() -> Response | tuple[str, int]:
    submitted = request.form.to_dict()
    event_type = submitted.get("event_type", "").strip()
    submitted["enabled"] = "enabled" in request.form
    try:
        if not re.fullmatch(EVENT_TYPE_PATTERN, event_type):
            raise ValidationError(
                {"event_type": ["Lower-case letters, digits, '.', '_' and '-', at most 64."]}
            )
        rule = TriggerRuleSchema().load(_rule_payload(submitted))
    except ValidationError as invalid:
        return _rules_page(422, _invalid_form(invalid), {**submitted, "event_type": event_type})
    service.put_trigger_rule(_runtime(), event_type, rule)
    return redirect(url_for(".trigger_rules", saved=event_type), code=303)


def _rules_page(status: int = 200, error: str | None = None, form: dict[str, Any] | None = None):
    return render_template(
        "survey/trigger_rules.html",
        t={"title": "Trigger rules"},
        page=None,
        rules=service.list_trigger_rules(_runtime()),
        form=form,
        error=error,
        saved=request.args.get("saved"),
        touchpoints=sorted(set(TOUCHPOINTS.values())),
        operators=[operator.value for operator in ConditionOperator],
    ), status


def _form_values(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the form shows it: conditions one a line, "property operator value", the value as JSON."""
    lines = [f"{c['property']} {c['operator']} {json.dumps(c['value'])}" for c in rule["conditions"]]
    return {
        **rule,
        "conditions": "\n".join(lines),
        "invitation_expiry_days": rule["invitation_expiry_days"] or "",
    }


def _rule_payload(form: dict[str, Any]) -> dict[str, Any]:
    """The form's strings as TriggerRuleSchema takes them; the schema still validates every value."""
    payload: dict[str, Any] = {"enabled": form["enabled"], "touchpoint": form.get("touchpoint", "")}
    for name in RULE_NUMBERS:
        if (form.get(name) or "").strip():
            payload[name] = form[name].strip()
    payload["invitation_expiry_days"] = (form.get("invitation_expiry_days") or "").strip() or None
    payload["conditions"] = [
        _condition(line) for line in (form.get("conditions") or "").splitlines() if line.strip()
    ]
    return payload


def _condition(line: str) -> dict[str, Any]:
    parts = line.split(None, 2)
    if len(parts) < 3:
        raise ValidationError({"conditions": [f"'{line.strip()}': write property, operator and value."]})
    name, operator, text = parts
    try:
        value = json.loads(text)
    except ValueError:
        value = text.strip()  # a bare word such as solved is meant as text
    return {"property": name, "operator": operator, "value": value}


def _invalid_form(invalid: ValidationError) -> str:
    messages = invalid.normalized_messages()
    return "The rule was not saved. " + "; ".join(
        f"{field}: {problems}" for field, problems in messages.items()
    )
