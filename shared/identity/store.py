"""Staff users, API keys and sign-in failures, kept in the identity database that every service reads."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import Database
from shared.migrations import upgrade
from shared.principal import Principal, Role
from shared.settings import Settings

from .domain import (
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    ApiKey,
    DuplicateEmailError,
    InvalidEmailError,
    InvalidNameError,
    SignInThrottledError,
    StaffUser,
    ThrottlePolicy,
    UnknownApiKeyError,
    UnknownUserError,
    WrongCredentialsError,
    api_key_digest,
    api_key_display_prefix,
    api_key_id,
    check_password_policy,
    clean_name,
    generate_api_key,
    is_api_key_id,
    last_use_is_stale,
    normalize_email,
    parse_role,
)
from .models import MIGRATIONS, VERSION_TABLE, ApiKeyRow, SignInFailureRow, StaffUserRow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# (kind, subject) of a sign-in attempt: ("email", "jane@example.com") or ("address", "192.0.2.7").
Subject = tuple[str, str]


class IdentityStore:
    """The use cases of identity on one database; every process of every service may run them at once."""

    def __init__(
        self,
        database: Database,
        *,
        password_hasher: PasswordHasher | None = None,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self._password_hasher = password_hasher
        self._throttle = throttle or ThrottlePolicy()
        self._clock = clock

    def migrate(self) -> None:
        upgrade(self.database.url, MIGRATIONS, VERSION_TABLE)

    # Staff users

    def create_user(self, email: str, password: str, role: Role | str, name: str | None = None) -> StaffUser:
        """A new active user; refuses a taken email, a short password, an unknown role."""
        email_key, user_role, user_name = normalize_email(email), parse_role(role), clean_name(name, "name")
        check_password_policy(password)
        row = StaffUserRow(
            id=str(uuid.uuid4()),
            email=email_key,
            name=user_name,
            role=user_role.value,
            password_hash=self._hasher.hash(password),
            active=True,
            created_at=self._clock(),
        )
        try:
            with self.database.transaction() as session:
                existing = session.scalar(select(StaffUserRow.id).where(StaffUserRow.email == email_key))
                taken = existing is not None
                if not taken:
                    session.add(row)
        except IntegrityError:  # created by another process between our check and our insert
            taken = True
        if taken:
            raise DuplicateEmailError(f"A user with the email {email_key} exists already.")
        return _staff_user(row)

    def list_users(self) -> list[StaffUser]:
        with self.database.transaction() as session:
            rows = session.scalars(select(StaffUserRow).order_by(StaffUserRow.email)).all()
            return [_staff_user(row) for row in rows]

    def deactivate_user(self, user_id: str) -> StaffUser:
        """The user can no longer sign in, and their open sessions stop working at their next request."""
        with self.database.transaction() as session:
            row = session.get(StaffUserRow, user_id) if _is_user_id(user_id) else None
            if row is None:
                raise UnknownUserError(f"There is no user {user_id!r}.")
            row.active = False
            return _staff_user(row)

    def principal_for_user(self, user_id: str) -> Principal | None:
        """Who a session belongs to, read afresh: None once the user is deactivated or gone."""
        if not _is_user_id(user_id):
            return None
        with self.database.transaction() as session:
            row = session.get(StaffUserRow, user_id)
            return _staff_user(row).principal() if row is not None and row.active else None

    # Sign-in

    def authenticate(self, email: str, password: str, client_address: str | None) -> Principal:
        """The principal of the active user with this email and password.

        Raises SignInThrottledError while the email or the address is refused, WrongCredentialsError
        otherwise. Failures count against both, in the database, so every process throttles alike.
        """
        now = self._clock()
        try:
            email_key: str | None = normalize_email(email)
        except InvalidEmailError:
            email_key = None  # no user has it; the attempt still counts against the address
        subjects: list[Subject] = []
        if email_key:
            subjects.append(("email", email_key))
        if client_address:
            subjects.append(("address", client_address[:MAX_EMAIL_LENGTH]))

        with self.database.transaction() as session:
            locked_until = self._locked_until(session, subjects, now)
            row = (
                session.scalar(select(StaffUserRow).where(StaffUserRow.email == email_key))
                if email_key
                else None
            )
        if locked_until is not None:
            raise SignInThrottledError(locked_until)
        # Hashing happens outside the transaction: on SQLite it holds the write lock.
        if row is None or not row.active or not self._password_matches(row.password_hash, password):
            self._record_failure(subjects, now)
            raise WrongCredentialsError()

        with self.database.transaction() as session:
            session.execute(
                delete(SignInFailureRow).where(
                    SignInFailureRow.kind == "email", SignInFailureRow.subject == email_key
                )
            )
            if self._hasher.check_needs_rehash(row.password_hash):
                # The hasher's parameters were raised since this hash was made; we hold the password now.
                stored = session.get(StaffUserRow, row.id)
                if stored is not None:
                    stored.password_hash = self._hasher.hash(password)
        return _staff_user(row).principal()

    def _password_matches(self, password_hash: str | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            # An unknown email costs as much time as a wrong password, so timing does not tell them apart.
            return self._hasher.verify(password_hash or self._decoy_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @cached_property
    def _hasher(self) -> PasswordHasher:
        # argon2 loads where a password is set or checked: every process holds a store, few sign anyone in.
        from argon2 import PasswordHasher

        return self._password_hasher or PasswordHasher()

    @cached_property
    def _decoy_hash(self) -> str:
        return self._hasher.hash(uuid.uuid4().hex)

    def _locked_until(self, session: Session, subjects: list[Subject], now: datetime) -> datetime | None:
        if not subjects:
            return None
        rows = session.execute(
            select(SignInFailureRow.kind, SignInFailureRow.subject, SignInFailureRow.failed_at).where(
                SignInFailureRow.failed_at >= now - self._throttle.horizon,
                or_(*(and_(SignInFailureRow.kind == k, SignInFailureRow.subject == s) for k, s in subjects)),
            )
        ).all()
        ends = [
            self._throttle.locked_until([r.failed_at for r in rows if (r.kind, r.subject) == subject], now)
            for subject in subjects
        ]
        return max((end for end in ends if end is not None), default=None)

    def _record_failure(self, subjects: list[Subject], now: datetime) -> None:
        with self.database.transaction() as session:
            session.add_all(
                SignInFailureRow(kind=kind, subject=subject, failed_at=now) for kind, subject in subjects
            )
            # Older failures can no longer refuse anyone: forget them here rather than in a periodic job.
            session.execute(
                delete(SignInFailureRow).where(SignInFailureRow.failed_at < now - self._throttle.horizon)
            )

    # API keys

    def create_api_key(self, name: str, role: Role | str, created_by: str) -> tuple[ApiKey, str]:
        """The key's record and its plaintext, which is not stored and cannot be shown again."""
        key_name = clean_name(name, "key's name")
        if key_name is None:
            raise InvalidNameError("An API key needs a name that says what uses it.")
        plaintext = generate_api_key()
        row = ApiKeyRow(
            id=api_key_id(plaintext),
            name=key_name,
            role=parse_role(role).value,
            prefix=api_key_display_prefix(plaintext),
            secret_hash=api_key_digest(plaintext),
            created_by=created_by[:MAX_EMAIL_LENGTH],
            created_at=self._clock(),
            last_used_at=None,
            revoked_at=None,
        )
        with self.database.transaction() as session:
            session.add(row)
        return _api_key(row), plaintext

    def verify_api_key(self, plaintext: str) -> Principal | None:
        """The key's principal, or None for a malformed, unknown or revoked key."""
        key_id = api_key_id(plaintext)
        if key_id is None:
            return None
        now = self._clock()
        with self.database.transaction() as session:
            row = session.get(ApiKeyRow, key_id)
            if (
                row is None
                or row.revoked_at is not None
                or not hmac.compare_digest(row.secret_hash, api_key_digest(plaintext))
            ):
                return None
            if last_use_is_stale(row.last_used_at, now):
                row.last_used_at = now
            return _api_key(row).principal()

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """The key stops working at once; revoking it again keeps the first revocation's time."""
        with self.database.transaction() as session:
            # The id may come from a URL, holding what the database cannot compare (a NUL byte).
            row = session.get(ApiKeyRow, key_id) if is_api_key_id(key_id) else None
            if row is None:
                raise UnknownApiKeyError(f"There is no API key {key_id!r}.")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return _api_key(row)

    def list_api_keys(self) -> list[ApiKey]:
        """Newest first, revoked ones included."""
        with self.database.transaction() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc())).all()
            return [_api_key(row) for row in rows]


def _is_user_id(candidate: str) -> bool:
    try:
        return str(uuid.UUID(candidate)) == candidate
    except ValueError:
        return False


def _staff_user(row: StaffUserRow) -> StaffUser:
    return StaffUser(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        active=row.active,
        created_at=row.created_at,
    )


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def identity_store(settings: Settings) -> IdentityStore:
    """The identity store the settings name (IDENTITY_DATABASE_URL, else DATABASE_URL)."""
    return IdentityStore(Database(settings.identity_database_url))
