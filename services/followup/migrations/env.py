"""Alembic environment of the followup service."""

from services.followup.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
