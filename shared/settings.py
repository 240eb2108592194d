"""One settings object, read from environment variables (documented in README.md)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.channels import CHANNELS

SERVICES = ("survey", "dispatch", "sentiment", "followup")
# The channels dispatch sends on, each with its own quiet hours.
MESSAGE_CHANNELS = CHANNELS
DEFAULT_SENDING_WINDOW = "08:00-21:00"
DEFAULT_SMS_HELP_TEXT = "{brand}: customer feedback surveys. Reply STOP to stop them, START to resume."
# FOLLOWUP_PASSIVES: what a passive's answer opens.
PASSIVE_POLICIES = ("ignore", "task")
# SENTIMENT_ANALYZER: lexicons and rules, or sentence embeddings with a fitted head (the default: it reads
# English comments and human-rated texts better; see README's Sentiment).
SENTIMENT_ANALYZERS = ("light", "model", "model-small")

# Printed at start in embedded mode; production sets CLOSELOOP_WEBHOOK_SECRET.
DEVELOPMENT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"closeloop-development-secret-32b").decode()
# Signs session cookies and CSRF tokens; for embedded mode only, production sets CLOSELOOP_SECRET_KEY.
DEVELOPMENT_SECRET_KEY = "closeloop-development-secret-key-not-for-production"


# The formats a CRM event source may send in: ours (Standard Webhooks) and vendors' own webhooks.
SOURCE_FORMATS = ("standard", "shopify", "zendesk")
# "default" is POST /v1/events, signed with CLOSELOOP_WEBHOOK_SECRET.
DEFAULT_SOURCE = "default"
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class EventSource:
    """A system sending CRM events (CLOSELOOP_SOURCES): its name, its format, the secret it signs with."""

    name: str
    format: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Limits:
    """Sizes a request may have; each is an environment variable named in ``LIMIT_VARIABLES``."""

    # Any request body, unless its route has a limit of its own below.
    request_bytes: int = 256 * 1024
    # A signed CRM event (POST /v1/events).
    event_bytes: int = 64 * 1024
    # A provider's webhook post (SendGrid batches events; Twilio posts one form).
    webhook_bytes: int = 1024 * 1024
    # The customer's answer page form (score and comment).
    answer_bytes: int = 32 * 1024
    # Objects and arrays nested in a JSON body.
    json_depth: int = 16
    # A CRM event's properties, and its customer's attributes, each as JSON.
    properties_bytes: int = 16 * 1024
    # A customer's comment; a longer one is cut, and the thank-you page says so.
    comment_chars: int = 5000
    # One text sentiment scores, and all texts of one batch together.
    sentiment_text_chars: int = 5000
    sentiment_batch_chars: int = 50_000

    def body_bytes_for(self, path: str, method: str) -> int:
        """The body limit of a request: its route's own, else the general one."""
        if method == "POST" and path == "/v1/events":
            return self.event_bytes
        if path.startswith("/webhooks/"):
            return self.webhook_bytes
        if path.startswith("/s/"):
            return self.answer_bytes
        return self.request_bytes


LIMIT_VARIABLES = {
    "request_bytes": "MAX_REQUEST_BYTES",
    "event_bytes": "MAX_EVENT_BYTES",
    "webhook_bytes": "MAX_WEBHOOK_BYTES",
    "answer_bytes": "MAX_ANSWER_BYTES",
    "json_depth": "MAX_JSON_DEPTH",
    "properties_bytes": "MAX_PROPERTIES_BYTES",
    "comment_chars": "MAX_COMMENT_CHARS",
    "sentiment_text_chars": "SENTIMENT_MAX_TEXT_CHARS",
    "sentiment_batch_chars": "SENTIMENT_MAX_BATCH_CHARS",
}


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
    # An invitation stops taking answers this many days after it was sent, unless its trigger rule says.
    survey_invitation_expiry_days: int = 30
    # A survey SMS template may cost at most this many billed segments (checked with long sample values).
    survey_sms_max_segments: int = 3
    sendgrid_from_email: str = "surveys@closeloop.invalid"
    sendgrid_from_name: str = "Closeloop"
    sendgrid_api_base_url: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    # WhatsApp through Twilio: the sender ("whatsapp:+14155238886" or the number) and the approved template's
    # content SID (HX...), whose variables are {{1}} the greeting, {{2}} the question, {{3}} the survey link.
    # Both set: customers who prefer WhatsApp get it (then SMS, then email).
    twilio_whatsapp_from: str | None = None
    twilio_whatsapp_content_sid: str | None = None
    # How long a provider call waits for its answer; past it, the outcome is unknown (never resent blindly).
    provider_timeout_seconds: float = 10.0
    # How long a delivery may stay claimed ("sending") before its worker is taken for dead and the delivery
    # is looked up at the provider (or shown unknown). A clock claims no more at once than this covers.
    delivery_lease_seconds: float = 900.0
    # Dispatch's sending window per channel, local time in the customer's time zone ("08:00-21:00", or
    # "off"); QUIET_HOURS sets every channel, QUIET_HOURS_EMAIL / _SMS / _WHATSAPP one of them. Parsed by
    # dispatch at start (services.dispatch.quiet_hours).
    quiet_hours: Mapping[str, str] = field(
        default_factory=lambda: dict.fromkeys(MESSAGE_CHANNELS, DEFAULT_SENDING_WINDOW)
    )
    # The IANA time zone of a customer who has none (or an unknown one).
    default_timezone: str = "UTC"
    # Reminders to customers who have not answered: how many, and how long after the previous message;
    # per touchpoint (REMINDERS_BY_TOUCHPOINT="purchase=1/72,support_call=0"), else these.
    reminder_count: int = 1
    reminder_delay_hours: float = 48.0
    reminders_by_touchpoint: Mapping[str, tuple[int, float | None]] = field(default_factory=dict)
    # What an SMS "HELP" is answered with; None leaves the answer to Twilio (Advanced Opt-Out).
    sms_help_text: str | None = DEFAULT_SMS_HELP_TEXT
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
    # Which tier scores comments: "light" (lexicons and rules), "model" (all-mpnet-base-v2's first seven
    # layers and a fitted head) or "model-small" (all-MiniLM-L6-v2 fine-tuned: faster); README's Sentiment.
    sentiment_analyzer: str = "model"
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
    # The customer attributes (as the CRM sends them in customer.attributes) NPS is broken down by; the
    # rollup counts each of them per day, so name attributes with a few values (plan, region), not ids.
    nps_segment_attributes: tuple[str, ...] = ("plan", "region")
    # Requests per minute each API key may make to the Delighted-compatible API before a 429; 0: no limit.
    delighted_rate_limit_per_minute: int = 600
    # Per-service overrides: SURVEY_DATABASE_URL, DISPATCH_PUBLIC_URL, ...; and IDENTITY_DATABASE_URL, the
    # staff users' and API keys' tables, which every service reads.
    service_database_urls: Mapping[str, str] = field(default_factory=dict)
    service_public_urls: Mapping[str, str] = field(default_factory=dict)
    # CRM event sources besides the default one, by name (CLOSELOOP_SOURCES, CLOSELOOP_SOURCE_<NAME>_SECRET).
    sources: Mapping[str, EventSource] = field(default_factory=dict)
    # What one request may bring, so that no request ties a worker up for long (README: Operating Closeloop).
    limits: Limits = field(default_factory=Limits)
    # Log lines as JSON objects (one a line) instead of plain text.
    log_json: bool = False

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
            survey_invitation_expiry_days=_days(env, "SURVEY_INVITATION_EXPIRY_DAYS")
            or defaults.survey_invitation_expiry_days,
            survey_sms_max_segments=_segments(
                env, "SURVEY_SMS_MAX_SEGMENTS", defaults.survey_sms_max_segments
            ),
            sendgrid_from_email=get("SENDGRID_FROM_EMAIL", defaults.sendgrid_from_email),
            # The sender customers see is the brand unless named apart.
            sendgrid_from_name=get("SENDGRID_FROM_NAME", get("BRAND_NAME", defaults.sendgrid_from_name)),
            sendgrid_api_base_url=get("SENDGRID_API_BASE_URL", defaults.sendgrid_api_base_url),
            sendgrid_webhook_public_key=get("SENDGRID_WEBHOOK_PUBLIC_KEY", None),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID", None),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN", None),
            twilio_from_number=get("TWILIO_FROM_NUMBER", None),
            twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID", None),
            twilio_api_base_url=get("TWILIO_API_BASE_URL", None),
            twilio_whatsapp_from=get("TWILIO_WHATSAPP_FROM", None),
            twilio_whatsapp_content_sid=get("TWILIO_WHATSAPP_CONTENT_SID", None),
            provider_timeout_seconds=_positive_number(
                env, "PROVIDER_TIMEOUT_SECONDS", defaults.provider_timeout_seconds
            ),
            delivery_lease_seconds=_positive_number(
                env, "DELIVERY_LEASE_SECONDS", defaults.delivery_lease_seconds
            ),
            quiet_hours={
                channel: (
                    get(f"QUIET_HOURS_{channel.upper()}", None)
                    or get("QUIET_HOURS", DEFAULT_SENDING_WINDOW)
                    or DEFAULT_SENDING_WINDOW
                ).strip()
                for channel in MESSAGE_CHANNELS
            },
            default_timezone=_time_zone(env, "DEFAULT_TIMEZONE", defaults.default_timezone),
            reminder_count=_count(env, "REMINDER_COUNT", defaults.reminder_count),
            reminder_delay_hours=_positive_number(env, "REMINDER_DELAY_HOURS", defaults.reminder_delay_hours),
            reminders_by_touchpoint=_reminders_by_touchpoint(env, "REMINDERS_BY_TOUCHPOINT"),
            sms_help_text=_help_text(env, "SMS_HELP_TEXT"),
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
            nps_segment_attributes=_names(env, "NPS_SEGMENT_ATTRIBUTES", defaults.nps_segment_attributes),
            delighted_rate_limit_per_minute=_whole_number(
                env, "DELIGHTED_RATE_LIMIT_PER_MINUTE", defaults.delighted_rate_limit_per_minute
            ),
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
            sources=_sources(env),
            limits=Limits(
                **{
                    name: _positive_whole_number(env, variable, getattr(defaults.limits, name))
                    for name, variable in LIMIT_VARIABLES.items()
                }
            ),
            log_json=_flag(env, "CLOSELOOP_LOG_JSON", defaults.log_json),
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


def _names(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of attribute names: letters, digits, "_", "-" and ".", at most 64 each."""
    value = env.get(name)
    if value is None:
        return default
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    for part in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", part):
            raise ValueError(f"{name}: {part!r} is not an attribute name (letters, digits, _ - .)")
    return names


def _positive_whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    # ASCII digits only: str.isdigit() accepts superscripts and other scripts' digits.
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise ValueError(f"{name} must be a whole number above 0, not {value!r}")
    return int(value)


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


def source_secret_variable(name: str) -> str:
    """The variable holding a source's secret: shop-eu -> CLOSELOOP_SOURCE_SHOP_EU_SECRET."""
    return f"CLOSELOOP_SOURCE_{name.upper().replace('-', '_')}_SECRET"


def _sources(env: Mapping[str, str]) -> dict[str, EventSource]:
    """CLOSELOOP_SOURCES="shop:shopify, helpdesk:zendesk, erp:standard"; each secret in its own variable, so
    a secret manager can hold it alone. Anything wrong stops the start, naming the variable."""
    sources: dict[str, EventSource] = {}
    for entry in (env.get("CLOSELOOP_SOURCES") or "").replace(",", " ").split():
        name, _, source_format = entry.partition(":")
        if not SOURCE_NAME.fullmatch(name) or name == DEFAULT_SOURCE or name in sources:
            raise ValueError(
                f"CLOSELOOP_SOURCES: {name!r} is not a new source name (lower-case letters, digits, - and _, "
                f"at most 32; not {DEFAULT_SOURCE!r})"
            )
        if source_format not in SOURCE_FORMATS:
            raise ValueError(
                f"CLOSELOOP_SOURCES: the format of {name!r} must be one of {', '.join(SOURCE_FORMATS)}, "
                f"as {name}:shopify"
            )
        variable = source_secret_variable(name)
        secret = (env.get(variable) or "").strip()
        if not secret:
            raise ValueError(f"{variable} must hold the secret the source {name!r} signs with")
        if source_format == "standard" and not is_standard_webhooks_secret(secret):
            raise ValueError(f"{variable} must be a Standard Webhooks secret: whsec_ and base64")
        sources[name] = EventSource(name, source_format, secret)
    return sources


def is_standard_webhooks_secret(secret: str) -> bool:
    """``whsec_`` and a base64 key, as the Standard Webhooks libraries take it."""
    if not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) > 0
    except ValueError:
        return False


def _time_zone(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        message = f"{name} must be an IANA time zone such as Europe/Istanbul, not {value!r}"
        raise ValueError(message) from error
    return value


MAX_REMINDERS = 5


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit() and int(value) <= MAX_REMINDERS):
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_REMINDERS}, not {value!r}")
    return int(value)


def _reminders_by_touchpoint(env: Mapping[str, str], name: str) -> dict[str, tuple[int, float | None]]:
    """``purchase=1/72,support_call=0``: a count per touchpoint, and optionally the delay in hours."""
    value = (env.get(name) or "").strip()
    rules: dict[str, tuple[int, float | None]] = {}
    for part in filter(None, (item.strip() for item in value.split(","))):
        match = re.fullmatch(r"([\w.:-]{1,64})=([0-9])(?:/([0-9]+(?:\.[0-9]+)?))?", part, re.ASCII)
        if not match or int(match.group(2)) > MAX_REMINDERS or (match.group(3) and not float(match.group(3))):
            raise ValueError(
                f"{name} must read like purchase=1/72,support_call=0 (touchpoint=count/hours), not {part!r}"
            )
        # Without hours, REMINDER_DELAY_HOURS.
        delay = float(match.group(3)) if match.group(3) else None
        rules[match.group(1)] = (int(match.group(2)), delay)
    return rules


def _help_text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return DEFAULT_SMS_HELP_TEXT
    # "none": Twilio's own HELP answer (Advanced Opt-Out) is the only one.
    return None if value.strip().lower() == "none" else value.strip()[:320]


def _segments(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 10):
        raise ValueError(f"{name} must be a whole number of SMS segments from 1 to 10, not {value!r}")
    return int(value)


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    # ASCII digits only, as for _days.
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{name} must be a whole number (0 or more), not {value!r}")
    return int(value)
