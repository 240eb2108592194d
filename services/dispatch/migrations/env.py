"""Alembic environment of the dispatch service."""

from services.dispatch.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
