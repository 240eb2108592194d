"""What the sentiment service's use cases run with: its settings and a way to open a unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from shared.db import Database
from shared.identity.store import IdentityStore, identity_store
from shared.outbox import Outbox, OutboxPolicy
from shared.settings import SENTIMENT_ANALYZERS, Settings
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models
from .model_packages import TIER_DISTRIBUTIONS

if TYPE_CHECKING:
    from .analysis import TopicTagger

# The analysis package (its lexicons' code, cue tables and rules: some 1.7 MiB resident) loads with the first
# comment a process analyses, not at start; unless the deployment names what must be checked at start: a
# topics file or a model tier (below). SENTIMENT_ANALYZER's tiers are analysis.TIERS.
LIGHT, MODEL, MODEL_SMALL = SENTIMENT_ANALYZERS


@dataclass
class SentimentRuntime:
    settings: Settings
    unit_of_work: Callable[[], UnitOfWork]
    # None in unit tests, which run the use cases on an in-memory unit of work.
    database: Database | None = None
    outbox: Outbox | None = None
    # Who may use the app: staff users and API keys; a fake in unit tests that build the app.
    identity: IdentityStore | None = None
    # What comments are tagged with (SENTIMENT_TOPICS_FILE); None: the built-in topic list.
    topics: TopicTagger | None = None
    # SENTIMENT_ANALYZER: "light", "model" (the setting's default) or "model-small"; unit tests' runtimes
    # read light.
    tier: str = LIGHT


def topic_tagger(settings: Settings) -> TopicTagger | None:
    """The deployment's topic list; a broken file stops the service at start, not at its first comment.
    None without SENTIMENT_TOPICS_FILE: the analysis takes its built-in list."""
    if not settings.sentiment_topics_file:
        return None
    from .analysis import TopicTagger  # noqa: PLC0415 (on first use, see above)

    return TopicTagger.from_file(settings.sentiment_topics_file)


def sql_runtime(settings: Settings, database: Database) -> SentimentRuntime:
    return SentimentRuntime(
        settings,
        lambda: SqlUnitOfWork(models.SERVICE, database, models.outbox, models.consumed_events),
        database,
        Outbox(database, models.outbox, models.consumed_events, OutboxPolicy.from_settings(settings)),
        identity_store(settings),
        topic_tagger(settings),
        analyzer_tier(settings),
    )


class ModelTierMissing(RuntimeError):
    """A model tier named by SENTIMENT_ANALYZER in an installation without what it runs on."""


def analyzer_tier(settings: Settings) -> str:
    """The tier SENTIMENT_ANALYZER names. A model tier's packages are looked for now, so a broken
    installation stops the service at start rather than at its first comment; the model itself (some
    hundreds of MB) loads with the first comment, so an idle process does not hold it."""
    tier = settings.sentiment_analyzer
    missing = [name for name in TIER_DISTRIBUTIONS.get(tier, ()) if not _installed(name)]
    if missing:
        raise ModelTierMissing(
            f"SENTIMENT_ANALYZER={tier} needs {', '.join(missing)}: reinstall Closeloop with its "
            "dependencies (pip install -e .), or set SENTIMENT_ANALYZER=light"
        )
    return tier


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
