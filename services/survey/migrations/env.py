"""Alembic environment of the survey service."""

from services.survey.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
