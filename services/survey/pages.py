"""The customer's answer page (reached from a score link, works without JavaScript) and the staff's
trigger rules and templates pages."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from shared.http import DomainError, NotFoundError
from shared.identity.web import public, requires
from shared.locales import DEFAULT_LOCALE, SUPPORTED_LOCALES, localized
from shared.principal import Role
from shared.validation import current_limits

from . import service
from .domain import CLICK_BURST, SURVEYED_TOUCHPOINTS, TOUCHPOINTS, ConditionOperator
from .schemas import EVENT_TYPE_PATTERN, BrandSchema, MessageTemplateSchema, TriggerRuleSchema
from .wording import LANGUAGE_PATTERN, TEMPLATE_FIELDS

bp = Blueprint("answers", __name__, template_folder="templates")
admin_bp = Blueprint("survey_admin", __name__, template_folder="templates", url_prefix="/admin")

PAGE_TEXTS = {
    "en": {
        "title": "Your feedback",
        "your_score": "Your score",
        "send": "Send",
        "thanks_title": "Thank you!",
        "thanks_body": "Your answer has been saved. We read every comment.",
        "answered": "You have already answered; you can change your answer below.",
        "saved_with_send": "Your score is saved when you press Send.",
        "score_saved": "Your score of {score} is saved. Add a comment and press Send if you like.",
        "invalid_score": "Please choose a score from 0 to 10; what you wrote is kept below.",
        "not_found_title": "Link not found",
        "not_found": "This survey link is not valid. Please use the link in the message we sent you.",
        "expired_title": "Survey closed",
        "expired": "This survey has closed; thank you all the same.",
        "comment_cut": "Your comment was longer than {limit} characters; we kept the first {limit}.",
    },
    "tr": {
        "title": "Görüşünüz",
        "your_score": "Puanınız",
        "send": "Gönder",
        "thanks_title": "Teşekkürler!",
        "thanks_body": "Yanıtınız kaydedildi. Her yorumu okuyoruz.",
        "answered": "Bu ankete zaten yanıt verdiniz; yanıtınızı aşağıda değiştirebilirsiniz.",
        "saved_with_send": "Puanınız Gönder'e bastığınızda kaydedilir.",
        "score_saved": "{score} puanınız kaydedildi. İsterseniz bir yorum ekleyip Gönder'e basın.",
        "invalid_score": "Lütfen 0 ile 10 arasında bir puan seçin; yazdıklarınız aşağıda duruyor.",
        "not_found_title": "Bağlantı bulunamadı",
        "not_found": "Bu anket bağlantısı geçerli değil. Lütfen size gönderdiğimiz mesajdaki bağlantıyı "
        "kullanın.",
        "expired_title": "Anket kapandı",
        "expired": "Bu anket kapandı; yine de teşekkür ederiz.",
        "comment_cut": "Yorumunuz {limit} karakterden uzundu; ilk {limit} karakteri kaydettik.",
    },
}


def _runtime():
    return current_app.extensions["closeloop.survey"]


def _score_from(value: str | None) -> int | None:
    # ASCII digits only: str.isdigit() accepts superscripts and other scripts' digits.
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 2):
        return None
    score = int(text)
    return score if 0 <= score <= 10 else None


def _not_found_page():
    """A styled page in the visitor's language (Accept-Language), as there is no invitation to ask."""
    locale = request.accept_languages.best_match(SUPPORTED_LOCALES) or DEFAULT_LOCALE
    page = {"locale": locale, "brand": service.page_brand(_runtime())}
    texts = localized(PAGE_TEXTS, locale)
    return render_template(
        "survey/closed.html", page=page, t=texts, heading=texts["not_found_title"], body=texts["not_found"]
    ), 404


def _answer_form(
    page: service.AnswerPage,
    status: int = 200,
    error: str | None = None,
    typed: str | None = None,
    clicked: int | None = None,
):
    texts = localized(PAGE_TEXTS, page.locale)
    if page.expired:
        return render_template(
            "survey/closed.html", page=page, t=texts, heading=texts["expired_title"], body=texts["expired"]
        ), 410
    comment = typed if typed is not None else page.comment
    return render_template(
        "survey/answer.html", page=page, t=texts, error=error, comment=comment, clicked=clicked
    ), status


@bp.get("/s/<token>")
@public  # the customer's page, reached by the unguessable token in the link
def show_answer_page(token: str):
    """Shows the page with the link's score chosen; the GET records nothing (scanners fetch every link)."""
    clicked = _score_from(request.args.get("score"))
    try:
        page = service.answer_page(_runtime(), token, clicked)
    except NotFoundError:
        return _not_found_page()
    response = make_response(_answer_form(page, clicked=clicked))
    # Nothing here for a scanner or a shared cache to keep.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/s/<token>/click")
@public
def record_score_click(token: str):
    """Posted by the answer page's script once it has rendered; confirmed by it two seconds later."""
    score = _score_from(request.form.get("score"))
    if score is None:
        return {"saved": False, "error": "score: a whole number from 0 to 10"}, 422
    try:
        outcome = service.record_click(_runtime(), token, score, request.headers.get("User-Agent"))
    except NotFoundError:
        return {"saved": False, "error": "unknown link"}, 404
    if outcome.page.expired:
        return {"saved": False, "error": "the survey has closed"}, 410
    confirm_url = url_for(".confirm_score_click", token=token, click_id=outcome.click_id)
    wait_ms = int(CLICK_BURST.total_seconds() * 1000)
    return {
        "saved": False,
        "click_id": outcome.click_id,
        "confirm_url": confirm_url,
        "confirm_after_ms": wait_ms,
    }, 202


@bp.post("/s/<token>/click/<int:click_id>/confirm")
@public
def confirm_score_click(token: str, click_id: int):
    """The person's click counts now, unless a click for another score came within two seconds of it."""
    try:
        outcome = service.confirm_click(_runtime(), token, click_id)
    except service.ClickTooEarly as early:
        return {"saved": False, "error": early.detail}, 425
    except NotFoundError:
        return {"saved": False, "error": "unknown link or click"}, 404
    if outcome.page.expired:
        return {"saved": False, "error": "the survey has closed"}, 410
    return {"saved": outcome.counted, "score": outcome.page.chosen_score if outcome.counted else None}


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
            page = service.answer_page(_runtime(), token)
            # What was typed stays on the page; only the score is asked for.
            return _answer_form(page, 422, localized(PAGE_TEXTS, page.locale)["invalid_score"], comment)
        page = service.submit_answer(_runtime(), token, score, comment)
    except NotFoundError:
        return _not_found_page()
    if page.expired:  # nothing was saved: the page says the survey has closed
        return _answer_form(page)
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


# --- Message templates and the brand, for staff ---------------------------------------------------------


@admin_bp.get("/templates")
def message_templates() -> tuple[str, int]:
    """Every wording; ``?edit=<touchpoint>/<language>`` opens one in the form beside its previews."""
    editing = (request.args.get("edit") or "").split("/")
    form = None
    if (
        len(editing) == 2
        and editing[0] in SURVEYED_TOUCHPOINTS
        and re.fullmatch(LANGUAGE_PATTERN, editing[1])
    ):
        form = service.get_template(_runtime(), editing[0], editing[1])
    return _templates_page(form=form)


@admin_bp.post("/templates")
@requires(Role.MANAGER)
def save_message_template() -> Response | tuple[str, int]:
    """Save, preview (nothing stored) or reset to the shipped wording, as the pressed button says."""
    submitted = request.form.to_dict()
    touchpoint, locale = submitted.get("touchpoint", ""), submitted.get("locale", "").strip().lower()
    form = {**submitted, "touchpoint": touchpoint, "locale": locale}
    try:
        if touchpoint not in SURVEYED_TOUCHPOINTS:
            raise ValidationError({"touchpoint": ["Choose one of the touchpoints."]})
        if not re.fullmatch(LANGUAGE_PATTERN, locale):
            raise ValidationError({"locale": ["A two-letter language code, such as en or tr."]})
        if submitted.get("action") == "reset":
            with contextlib.suppress(NotFoundError):  # already the shipped wording
                service.reset_template(_runtime(), touchpoint, locale)
            return redirect(url_for(".message_templates", saved=f"{touchpoint}/{locale}"), code=303)
        fields = MessageTemplateSchema().load({name: submitted.get(name, "") for name in TEMPLATE_FIELDS})
        if submitted.get("action") == "preview":
            return _templates_page(form=service.preview_template(_runtime(), touchpoint, locale, fields))
        service.put_template(_runtime(), touchpoint, locale, fields)
    except ValidationError as invalid:
        return _templates_page(422, _field_errors(invalid.normalized_messages()), form)
    except DomainError as refused:
        if refused.status != 422:
            raise
        preview = service.preview_template(_runtime(), touchpoint, locale, fields)
        return _templates_page(422, _field_errors(refused.errors or {}), preview)
    return redirect(url_for(".message_templates", saved=f"{touchpoint}/{locale}"), code=303)


@admin_bp.post("/brand")
@requires(Role.MANAGER)
def save_brand() -> Response | tuple[str, int]:
    submitted = {name: (request.form.get(name) or "").strip() or None for name in ("name", "color")}
    try:
        brand = BrandSchema().load(submitted)
    except ValidationError as invalid:
        return _templates_page(422, _field_errors(invalid.normalized_messages()), brand_form=submitted)
    service.put_brand(_runtime(), brand["name"], brand["color"])
    return redirect(url_for(".message_templates", saved="brand"), code=303)


def _templates_page(
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    brand_form: dict[str, Any] | None = None,
):
    templates = service.list_templates(_runtime())
    previews = []
    if form:
        # The wording being edited in every language, so a change can be read beside its translations.
        previews = [
            t for t in templates if t["touchpoint"] == form["touchpoint"] and t["locale"] != form["locale"]
        ]
    return render_template(
        "survey/message_templates.html",
        t={"title": "Templates"},
        page=None,
        templates=templates,
        form=form,
        previews=previews,
        errors=errors or {},
        brand=brand_form or service.get_brand(_runtime()),
        saved=request.args.get("saved"),
        touchpoints=SURVEYED_TOUCHPOINTS,
        fields=TEMPLATE_FIELDS,
        labels=FIELD_LABELS,
        max_segments=_runtime().settings.survey_sms_max_segments,
    ), status


FIELD_LABELS = {
    "nps_question": "NPS question (answer page and email)",
    "follow_up_question": "Follow-up question (asked under the score)",
    "sms_text": "SMS text",
    "email_subject": "Email subject",
    "name": "Brand name",
    "color": "Brand colour",
    "touchpoint": "Touchpoint",
    "locale": "Language",
}


def _field_errors(messages: dict[str, Any]) -> dict[str, str]:
    return {
        name: " ".join(problems) if isinstance(problems, list) else str(problems)
        for name, problems in messages.items()
    }
