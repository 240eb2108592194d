"""Who is asking: a signed-in staff member or a machine's API key, and the roles that order what they may do.

The access guard (``shared.identity.web``) puts the request's principal on ``flask.g``; endpoints and use
cases read it with ``current_principal()`` and never look at cookies or headers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Staff roles, each allowed what the ones before it are."""

    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"

    def allows(self, required: Role) -> bool:
        return _ORDER.index(self) >= _ORDER.index(required)


_ORDER = [Role.AGENT, Role.MANAGER, Role.ADMIN]


@dataclass(frozen=True)
class Principal:
    """``kind`` is "user" (a session) or "api_key"; ``id`` the user's or the key's id."""

    kind: str
    id: str
    name: str
    role: Role
    email: str | None = None

    @property
    def is_user(self) -> bool:
        return self.kind == "user"


def current_principal() -> Principal | None:
    """The principal of the request being served, or None outside a request or on an open route."""
    # Imported here: workers and clocks import this module (roles, principals) but serve no request.
    from flask import g

    return g.get("principal")
