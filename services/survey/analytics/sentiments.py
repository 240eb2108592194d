"""The repository of sentiment's readings of responses (part of the survey unit of work)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..models import ResponseKeyPhrase, ResponseSentiment


class ResponseSentiments(Protocol):
    def get(self, response_id: str) -> ResponseSentiment | None: ...

    def add(self, sentiment: ResponseSentiment) -> None: ...

    def set_key_phrases(self, response_id: str, phrases: list[str]) -> None:
        """Replace the response's key phrases with ``phrases`` (distinct)."""
        ...


class SqlResponseSentiments:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, response_id: str) -> ResponseSentiment | None:
        return self.session.get(ResponseSentiment, response_id)

    def add(self, sentiment: ResponseSentiment) -> None:
        self.session.add(sentiment)

    def set_key_phrases(self, response_id: str, phrases: list[str]) -> None:
        self.session.execute(delete(ResponseKeyPhrase).where(ResponseKeyPhrase.response_id == response_id))
        self.session.add_all(ResponseKeyPhrase(response_id=response_id, phrase=phrase) for phrase in phrases)
        self.session.flush()
