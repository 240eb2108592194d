"""What a survey says: its wording per touchpoint and language (message templates) and the brand; no I/O.

English and Turkish are shipped for every touchpoint; staff may reword them, and add a language. A
language without a wording falls back to English. Templates are plain text with a few variables
(``{first_name}``, ``{brand}``, ``{order_id}``, each with an optional fallback: ``{first_name|there}``);
HTML escaping is the page's and the email's job, so a name like ``<b>Al</b>`` is shown as written, never
run as markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.locales import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.sms import sms_segments

from .domain import FOLLOW_UP_TOUCHPOINT, SURVEYED_TOUCHPOINTS

TEMPLATE_FIELDS = ("nps_question", "follow_up_question", "sms_text", "email_subject")
VARIABLES = ("first_name", "brand", "order_id")
# The invitation property the {order_id} variable reads (a CRM's purchase event carries it).
ORDER_ID_PROPERTY = "order_id"
# {name} or {name|fallback}; anything else in braces is refused when a template is saved.
_VARIABLE = re.compile(r"\{([a-z_]+)(?:\|([^{}]*))?\}")
LANGUAGE_PATTERN = r"^[a-z]{2}$"


@dataclass(frozen=True)
class Brand:
    name: str
    color: str


@dataclass(frozen=True)
class MessageTemplate:
    """One touchpoint's survey wording in one language."""

    touchpoint: str
    locale: str
    nps_question: str
    follow_up_question: str
    sms_text: str
    email_subject: str

    def fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in TEMPLATE_FIELDS}


_INTROS = {
    "en": {
        "purchase": "Thank you for your purchase!",
        "support_call": "Thank you for talking to our support team.",
        "site_visit": "Thank you for visiting us.",
        FOLLOW_UP_TOUCHPOINT: "Thanks for your earlier feedback; we followed up on it.",
    },
    "tr": {
        "purchase": "Alışverişiniz için teşekkür ederiz!",
        "support_call": "Destek ekibimizle görüştüğünüz için teşekkür ederiz.",
        "site_visit": "Bizi ziyaret ettiğiniz için teşekkür ederiz.",
        FOLLOW_UP_TOUCHPOINT: "Önceki geri bildiriminiz için teşekkürler; ekibimiz bununla ilgilendi.",
    },
}
_SHIPPED_TEXTS = {
    "en": {
        "nps_question": "{intro} How likely are you to recommend {brand} to a friend or colleague?",
        "follow_up_question": "What is the main reason for your score? (optional)",
        "sms_text": "{intro} Would you recommend {brand} to a friend? Reply 0 to 10 and tell us why. "
        "Reply STOP to opt out.",
        "email_subject": "How did we do?",
    },
    "tr": {
        "nps_question": "{intro} {brand} markasını bir arkadaşınıza veya iş arkadaşınıza tavsiye etme "
        "olasılığınız nedir?",
        "follow_up_question": "Bu puanı vermenizin ana nedeni nedir? (isteğe bağlı)",
        "sms_text": "{intro} {brand} markasını tavsiye eder misiniz? 0 ile 10 arası bir sayıyla yanıtlayın, "
        "nedenini de yazabilirsiniz. Çıkmak için STOP.",
        "email_subject": "Deneyiminiz nasıldı?",
    },
}


def _shipped(touchpoint: str, locale: str) -> MessageTemplate:
    intro = _INTROS[locale][touchpoint]
    texts = {name: text.replace("{intro}", intro) for name, text in _SHIPPED_TEXTS[locale].items()}
    return MessageTemplate(touchpoint, locale, **texts)


SHIPPED_TEMPLATES: dict[tuple[str, str], MessageTemplate] = {
    (touchpoint, locale): _shipped(touchpoint, locale)
    for touchpoint in SURVEYED_TOUCHPOINTS
    for locale in SUPPORTED_LOCALES
}


def language_of(locale: str | None) -> str:
    """'tr-TR', 'tr_TR' -> 'tr'; what templates are keyed by."""
    return (locale or "").replace("_", "-").split("-")[0].lower()


def template_for(
    touchpoint: str, locale: str | None, stored: Mapping[tuple[str, str], MessageTemplate]
) -> MessageTemplate:
    """Staff's wording in the customer's language, else the shipped one, else the same in English."""
    language = language_of(locale)
    for key in ((touchpoint, language), (touchpoint, DEFAULT_LOCALE)):
        if key in stored:
            return stored[key]
        if key in SHIPPED_TEMPLATES:
            return SHIPPED_TEMPLATES[key]
    raise KeyError(f"no wording for touchpoint {touchpoint}")


def survey_language(locale: str | None, stored_languages: set[str]) -> str:
    """The language a customer is surveyed in: theirs when shipped or worded by staff, else English."""
    language = language_of(locale)
    return language if language in SUPPORTED_LOCALES or language in stored_languages else DEFAULT_LOCALE


@dataclass(frozen=True)
class Variables:
    first_name: str | None
    brand: str
    order_id: str | None


def variables_for(customer_name: str | None, brand: Brand, properties: Mapping[str, Any]) -> Variables:
    first_name = (customer_name or "").strip().split(" ")[0] or None
    order_id = properties.get(ORDER_ID_PROPERTY)
    if isinstance(order_id, bool) or not isinstance(order_id, str | int):
        order_id = None
    return Variables(first_name, brand.name, str(order_id)[:64] if order_id is not None else None)


def render(text: str, variables: Variables) -> str:
    """``text`` with its variables filled in as plain text; an empty value takes its fallback, or nothing."""
    values = asdict(variables)

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return str(value) if value else (match.group(2) or "")

    filled = _VARIABLE.sub(fill, text)
    # "Hello {first_name}," without a name reads "Hello,", not "Hello ,".
    filled = re.sub(r"[ \t]+([,.!?;:])", r"\1", filled)
    return re.sub(r"[ \t]{2,}", " ", filled).strip()


def rendered(template: MessageTemplate, variables: Variables) -> MessageTemplate:
    return replace(template, **{name: render(getattr(template, name), variables) for name in TEMPLATE_FIELDS})


# The longest values a variable is checked with before a template is saved: the SMS budget must hold for
# the customers who have them, not only for a short sample.
SAMPLE_VARIABLES = {
    "en": Variables(first_name="Alexandra", brand="", order_id="100234567"),
    "tr": Variables(first_name="Ayşegül", brand="", order_id="100234567"),
}


def sample_variables(locale: str, brand: Brand) -> Variables:
    sample = SAMPLE_VARIABLES.get(language_of(locale), SAMPLE_VARIABLES[DEFAULT_LOCALE])
    return replace(sample, brand=brand.name)


def template_problems(fields: Mapping[str, str], brand: Brand, locale: str, max_sms_segments: int) -> dict:
    """Field errors of a template: unknown variables, and an SMS text over the segment budget."""
    problems: dict[str, list[str]] = {}
    for name in TEMPLATE_FIELDS:
        unknown = sorted({m.group(1) for m in _VARIABLE.finditer(fields[name])} - set(VARIABLES))
        if unknown:
            problems.setdefault(name, []).append(
                f"Unknown variable {', '.join('{' + u + '}' for u in unknown)}; use "
                + ", ".join("{" + v + "}" for v in VARIABLES)
                + "."
            )
    segments = sms_segments(render(fields["sms_text"], sample_variables(locale, brand)))
    if segments > max_sms_segments:
        problems.setdefault("sms_text", []).append(
            f"The SMS takes {segments} segments with sample values; the budget is {max_sms_segments} "
            "(SURVEY_SMS_MAX_SEGMENTS). Shorten it, or write it without letters outside GSM-7."
        )
    return problems
