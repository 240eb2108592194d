"""Alembic environment of the identity tables."""

from shared.identity.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
