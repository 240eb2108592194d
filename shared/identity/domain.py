"""Identity rules with no I/O: who a staff user is, what an API key looks like, when sign-in is refused."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.principal import Principal, Role

MIN_PASSWORD_LENGTH = 12
# Bounds what one sign-in attempt makes the server hash; no one types a longer password.
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200

API_KEY_PREFIX = "clk_"
_API_KEY_ID = "[0-9a-f]{16}"
_API_KEY = re.compile(rf"{API_KEY_PREFIX}(?P<id>{_API_KEY_ID})_[A-Za-z0-9_-]{{43,128}}")
# The stored key's last use is a hint for admins ("is anything still using this key?"), not an audit log:
# writing it on every request would turn each authenticated read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class IdentityError(Exception):
    """A request about users, keys or sign-in that is refused; the message is fit to show to the person."""


class InvalidEmailError(IdentityError):
    pass


class WeakPasswordError(IdentityError):
    pass


class InvalidNameError(IdentityError):
    pass


class UnknownRoleError(IdentityError):
    pass


class DuplicateEmailError(IdentityError):
    pass


class UnknownUserError(IdentityError):
    pass


class UnknownApiKeyError(IdentityError):
    pass


class WrongCredentialsError(IdentityError):
    """Unknown email, wrong password or deactivated user: the message does not say which."""

    def __init__(self) -> None:
        super().__init__("The email or password is not right.")


class SignInThrottledError(IdentityError):
    def __init__(self, until: datetime) -> None:
        super().__init__("Too many failed sign-in attempts. Wait a quarter of an hour and try again.")
        self.until = until


@dataclass(frozen=True)
class StaffUser:
    id: str
    email: str
    name: str | None
    role: Role
    active: bool
    created_at: datetime

    def principal(self) -> Principal:
        name = self.name or self.email
        return Principal(kind="user", id=self.id, name=name, role=self.role, email=self.email)


@dataclass(frozen=True)
class ApiKey:
    """An API key as admins see it: never its secret, only the prefix that tells keys apart."""

    id: str
    name: str
    role: Role
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def principal(self) -> Principal:
        return Principal(kind="api_key", id=self.id, name=self.name, role=self.role)


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise UnknownRoleError(f"Unknown role {role!r}; choose one of {choices}.") from None


def normalize_email(email: str) -> str:
    """The form an email is stored and looked up in: addresses differ in case only by mistake."""
    normalized = email.strip().lower()
    local, at, domain = normalized.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(normalized) > MAX_EMAIL_LENGTH
        or any(character.isspace() or not character.isprintable() for character in normalized)
    ):
        raise InvalidEmailError(f"{email.strip()!r} is not an email address.")
    return normalized


def clean_name(name: str | None, what: str) -> str | None:
    """A person's or key's name without surrounding blanks; None when blank."""
    cleaned = (name or "").strip()
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"The {what} must have at most {MAX_NAME_LENGTH} characters.")
    if not all(character.isprintable() for character in cleaned):
        raise InvalidNameError(f"The {what} holds characters that cannot be shown.")
    return cleaned or None


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"The password must have at most {MAX_PASSWORD_LENGTH} characters.")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise WeakPasswordError("The password holds characters that are not text.") from None


def generate_api_key() -> str:
    """``clk_`` + a public id (to find the key's row) + ``_`` + 32 random bytes, url-safe."""
    return f"{API_KEY_PREFIX}{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def api_key_id(plaintext: str) -> str | None:
    """The id inside a well-formed key, or None for anything else."""
    match = _API_KEY.fullmatch(plaintext)
    return match["id"] if match else None


def is_api_key_id(candidate: str) -> bool:
    return re.fullmatch(_API_KEY_ID, candidate) is not None


def api_key_digest(plaintext: str) -> str:
    # A plain SHA-256 is enough here, unlike for passwords: the key holds 256 random bits, so there is no
    # dictionary to try and no brute force that a slow hash would need to hold back, and verifying stays
    # cheap on every API request.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_display_prefix(plaintext: str) -> str:
    """Enough of the key for an admin to tell it apart from the others; useless for signing in."""
    return plaintext[: len(API_KEY_PREFIX) + 8]


def last_use_is_stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_PRECISION


@dataclass(frozen=True)
class ThrottlePolicy:
    """After ``max_failures`` failed sign-ins within ``window``, attempts are refused for ``lockout``."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)

    @property
    def horizon(self) -> timedelta:
        """How far back a failure can still cause a refusal; older ones can be forgotten."""
        return self.window + self.lockout

    def locked_until(self, failures: Iterable[datetime], now: datetime) -> datetime | None:
        """When the refusal caused by these failures ends, or None if attempts are allowed now.

        Refused attempts are not checked, so they are not failures: hammering during a lockout does not
        extend it.
        """
        times = sorted(failures)
        span = self.max_failures - 1
        until = None
        for last in range(span, len(times)):
            if times[last] - times[last - span] <= self.window:
                until = times[last] + self.lockout
        return until if until is not None and until > now else None
