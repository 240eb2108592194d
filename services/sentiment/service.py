"""The sentiment service's use cases."""

from __future__ import annotations

from dataclasses import asdict

from shared.consumers import ReceivedEvent, consumes
from shared.unit_of_work import UnitOfWork

from .runtime import SentimentRuntime

# The analysis is imported in the functions that use it: it loads with the first comment (see .runtime).


@consumes("response.submitted")
def score_response(runtime: SentimentRuntime, uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Score a submitted response's comment and pass the response on, scored."""
    from .analysis import analyze  # noqa: PLC0415 (on first use, see above)

    comment = event.data.get("comment")
    hint = language_hint(event.data["locale"])
    sentiment = (
        asdict(analyze(comment, language=hint, topics=runtime.topics, tier=runtime.tier)) if comment else None
    )
    # The event's JSON data, validated, passes on as it came; only the sentiment is added.
    uow.emit("response.scored", {**event.payload, "sentiment": sentiment})


def language_hint(locale: str | None) -> str | None:
    """The language a survey's locale expects ("tr-TR" -> "tr"), None for one the service does not
    score: a German survey's comment is detected, not read as English."""
    from .analysis import SUPPORTED_LANGUAGES  # noqa: PLC0415 (on first use, see above)

    language = (locale or "").replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED_LANGUAGES else None
