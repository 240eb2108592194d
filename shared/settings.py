"""One settings object, read from environment variables (documented in README.md)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

SERVICES = ("survey", "dispatch", "sentiment", "followup")
# FOLLOWUP_PASSIVES: what a passive's answer opens.
PASSIVE_POLICIES = ("ignore", "task")
# SENTIMENT_ANALYZER: lexicons and rules, or sentence embeddings with a fitted head (needs the model extra).
SENTIMENT_ANALYZERS = ("light", "model")

# Printed at start in embedded mode; production sets CLOSELOOP_WEBHOOK_SECRET.
DEVELOPMENT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"closeloop-development-secret-32b").decode()
# Signs session cookies and CSRF tokens; for embedded mode only, production sets CLOSELOOP_SECRET_KEY.
DEVELOPMENT_SECRET_KEY = "closeloop-development-secret-key-not-for-production"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/closeloop.db"
    broker_url: str = "memory://"
    public_base_url: str = "http://127.0.0.1:8000"
    webhook_secret: str = DEVELOPMENT_WEBHOOK_SECRET
    secret_key: str = DEVELOPMENT_SECRET_KEY
    # A staff session lasts this long after the last request (a working day by default).
    session_lifetime_hours: float = 12.0
    # "sandbox" keeps every email and SMS on the /sandbox page; "providers" calls SendGrid and Twilio.
    transport: str = "sandbox"
    sendgrid_api_key: str | None = None
    # The brand customers see in emails, SMS and on the answer page; the colour is a CSS hex colour.
    brand_name: str = "Closeloop"
    brand_color: str = "#1f6f5c"
    sendgrid_from_email: str = "surveys@closeloop.invalid"
    sendgrid_from_name: str = "Closeloop"
    sendgrid_api_base_url: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    # The outbox publishes an event again when its consumer has not acknowledged it within this many
    # seconds (doubling each time), and deletes finished rows after this many days.
    outbox_redeliver_after: float = 60.0
    outbox_retention_days: float = 7.0
    # Followup's SLA: hours the success team has to act on a high priority task (a score of 0-3, or a
    # comment that reads negative) and on a normal one (4-6).
    followup_sla_high_hours: float = 24.0
    followup_sla_normal_hours: float = 72.0
    # ... and on a low priority one (a passive's task, when FOLLOWUP_PASSIVES is "task"). A mismatch (9-10
    # with a clearly negative comment) is normal priority.
    followup_sla_low_hours: float = 168.0
    # What a passive's answer (7-8) opens: "ignore" (nothing) or "task" (a low-priority task).
    followup_passives: str = "ignore"
    # Where a promoter's referral link lands (followup's /r/<code> counts the click, then redirects here with
    # ?ref=<code>); unset: referral requests are recorded but not sent.
    followup_referral_url: str | None = None
    # Sentiment's topic list, a JSON file of {"topic": {"en": [cues], "tr": [cues]}}; unset: built-in.
    sentiment_topics_file: str | None = None
    # Which tier scores comments: "light" (lexicons and rules) or "model" (see README's Sentiment).
    sentiment_analyzer: str = "light"
    # A review page (a Google review link): every respondent is asked, whatever the score; unset: nobody.
    followup_review_url: str | None = None
    # Referral and review requests wait this long after the first answer, so that a comment or a changed
    # score arriving after the score can still withdraw or reword them; 0 sends them with the answer.
    followup_request_delay_minutes: float = 30.0
    # Survey asks a customer again this many days after their task is resolved; unset: no follow-up survey.
    followup_follow_up_survey_days: int | None = None
    # Outbound webhooks go to public addresses only; true lets them reach loopback, private and link-local
    # ones too (local development, the embedded demo). Cloud metadata addresses stay refused.
    webhooks_allow_private: bool = False
    # A Slack-compatible incoming-webhook URL: each new high-priority follow-up task is announced there.
    followup_alert_webhook_url: str | None = None
    # Per-service overrides: SURVEY_DATABASE_URL, DISPATCH_PUBLIC_URL, ...; and IDENTITY_DATABASE_URL, the
    # staff users' and API keys' tables, which every service reads.
    service_database_urls: Mapping[str, str] = field(default_factory=dict)
    service_public_urls: Mapping[str, str] = field(default_factory=dict)

    def database_url_for(self, service: str) -> str:
        return self.service_database_urls.get(service, self.database_url)

    def public_url_for(self, service: str) -> str:
        return self.service_public_urls.get(service, self.public_base_url).rstrip("/")

    @property
    def identity_database_url(self) -> str:
        return self.service_database_urls.get("identity", self.database_url)

    @property
    def uses_development_secret(self) -> bool:
        return self.webhook_secret == DEVELOPMENT_WEBHOOK_SECRET

    @property
    def uses_development_secret_key(self) -> bool:
        return self.secret_key == DEVELOPMENT_SECRET_KEY

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str, default: str | None) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else default

        port = get("PORT", "8000")
        return cls(
            database_url=get("DATABASE_URL", defaults.database_url),
            broker_url=get("BROKER_URL", defaults.broker_url),
            public_base_url=get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}"),
            webhook_secret=get("CLOSELOOP_WEBHOOK_SECRET", defaults.webhook_secret),
            secret_key=get("CLOSELOOP_SECRET_KEY", defaults.secret_key),
            session_lifetime_hours=_positive_number(
                env, "CLOSELOOP_SESSION_HOURS", defaults.session_lifetime_hours
            ),
            transport=get("CLOSELOOP_TRANSPORT", defaults.transport),
            sendgrid_api_key=get("SENDGRID_API_KEY", None),
            brand_name=get("BRAND_NAME", defaults.brand_name),
            brand_color=_hex_color(env, "BRAND_COLOR", defaults.brand_color),
            sendgrid_from_email=get("SENDGRID_FROM_EMAIL", defaults.sendgrid_from_email),
            sendgrid_from_name=get("SENDGRID_FROM_NAME", defaults.sendgrid_from_name),
            sendgrid_api_base_url=get("SENDGRID_API_BASE_URL", defaults.sendgrid_api_base_url),
            sendgrid_webhook_public_key=get("SENDGRID_WEBHOOK_PUBLIC_KEY", None),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID", None),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN", None),
            twilio_from_number=get("TWILIO_FROM_NUMBER", None),
            twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID", None),
            twilio_api_base_url=get("TWILIO_API_BASE_URL", None),
            outbox_redeliver_after=_positive_number(
                env, "OUTBOX_REDELIVER_AFTER", defaults.outbox_redeliver_after
            ),
            outbox_retention_days=_positive_number(
                env, "OUTBOX_RETENTION_DAYS", defaults.outbox_retention_days
            ),
            followup_sla_high_hours=_positive_number(
                env, "FOLLOWUP_SLA_HIGH_HOURS", defaults.followup_sla_high_hours
            ),
            followup_sla_normal_hours=_positive_number(
                env, "FOLLOWUP_SLA_NORMAL_HOURS", defaults.followup_sla_normal_hours
            ),
            followup_sla_low_hours=_positive_number(
                env, "FOLLOWUP_SLA_LOW_HOURS", defaults.followup_sla_low_hours
            ),
            followup_passives=_choice(env, "FOLLOWUP_PASSIVES", defaults.followup_passives, PASSIVE_POLICIES),
            followup_referral_url=_http_url(env, "FOLLOWUP_REFERRAL_URL"),
            followup_review_url=_http_url(env, "FOLLOWUP_REVIEW_URL"),
            followup_request_delay_minutes=_number_at_least_zero(
                env, "FOLLOWUP_REQUEST_DELAY_MINUTES", defaults.followup_request_delay_minutes
            ),
            followup_follow_up_survey_days=_days(env, "FOLLOWUP_FOLLOW_UP_SURVEY_DAYS"),
            webhooks_allow_private=_flag(
                env, "CLOSELOOP_WEBHOOKS_ALLOW_PRIVATE", defaults.webhooks_allow_private
            ),
            followup_alert_webhook_url=get("FOLLOWUP_ALERT_WEBHOOK_URL", None),
            sentiment_topics_file=get("SENTIMENT_TOPICS_FILE", None),
            sentiment_analyzer=_choice(
                env, "SENTIMENT_ANALYZER", defaults.sentiment_analyzer, SENTIMENT_ANALYZERS
            ),
            service_database_urls={
                s: env[f"{s.upper()}_DATABASE_URL"]
                for s in (*SERVICES, "identity")
                if env.get(f"{s.upper()}_DATABASE_URL")
            },
            service_public_urls={
                s: env[f"{s.upper()}_PUBLIC_URL"] for s in SERVICES if env.get(f"{s.upper()}_PUBLIC_URL")
            },
        )


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value in (None, ""):
        return default
    word = value.strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _hex_color(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    # Only #rgb or #rrggbb: the value is written into CSS and HTML.
    if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value):
        raise ValueError(f"{name} must be a CSS hex colour such as #1f6f5c, not {value!r}")
    return value


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return number


def _number_at_least_zero(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ValueError(f"{name} must be zero or a positive number, not {value!r}")
    return number


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name)
    if value in (None, ""):
        return default
    word = value.strip().lower()
    if word not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return word


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL customers are sent to, or None when unset; anything else is refused at start."""
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.lower().startswith(("https://", "http://")) or any(ord(c) <= 0x20 for c in value):
        raise ValueError(f"{name} must be an http(s) URL, not {value!r}")
    return value


def _days(env: Mapping[str, str], name: str) -> int | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    # ASCII digits only: str.isdigit() accepts superscripts and other scripts' digits.
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 365):
        raise ValueError(f"{name} must be a whole number of days from 1 to 365, not {value!r}")
    return int(value)
