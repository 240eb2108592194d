"""Alembic environment of the sentiment service."""

from services.sentiment.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
