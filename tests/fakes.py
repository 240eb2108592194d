"""Fakes of the project's own ports that more than one service's tests need."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.identity.domain import StaffUser
from shared.principal import Principal, Role

ROBOT = Principal("api_key", "k-robot", "Test robot", Role.ADMIN)
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeIdentityStore:
    """The identity store's questions answered from a dict: ``Authorization: Bearer <id>`` is that principal.

    Every app's guard asks it; ``bearer(principal)`` makes the header a test request sends.
    """

    def __init__(self, *principals: Principal) -> None:
        self.principals = {principal.id: principal for principal in (ROBOT, *principals)}

    def verify_api_key(self, plaintext: str) -> Principal | None:
        return self.principals.get(plaintext)

    def principal_for_user(self, user_id: str) -> Principal | None:
        principal = self.principals.get(user_id)
        return principal if principal and principal.is_user else None

    def list_users(self) -> list[StaffUser]:
        return [
            StaffUser(p.id, p.email or f"{p.id}@example.com", p.name, p.role, True, _EPOCH)
            for p in self.principals.values()
            if p.is_user
        ]

    def migrate(self) -> None:
        """Nothing to create in memory."""


def bearer(principal: Principal = ROBOT) -> dict[str, str]:
    return {"Authorization": f"Bearer {principal.id}"}
