"""The customer's answer page: reached from a score link, works without JavaScript."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from shared.http import NotFoundError
from shared.identity.web import public
from shared.locales import localized

from . import service

bp = Blueprint("answers", __name__, template_folder="templates")

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
    },
}


def _runtime():
    return current_app.extensions["closeloop.survey"]


def _score_from(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
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
    comment = (request.form.get("comment") or "")[:5000]
    try:
        if score is None:
            page = service.answer_page(_runtime(), token, None, None)
            texts = localized(PAGE_TEXTS, page.locale)
            return render_template(
                "survey/answer.html", page=page, t=texts, error=texts["invalid_score"]
            ), 422
        page = service.submit_answer(_runtime(), token, score, comment)
    except NotFoundError:
        abort(404)
    return render_template("survey/thanks.html", page=page, t=localized(PAGE_TEXTS, page.locale))
