"""The sentiment API's payloads."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.validation import current_limits

MAX_BATCH = 1000
# Languages a hint may name: the ones the service scores.
HINT_LANGUAGES = ("en", "tr")


def _language_hint() -> fields.String:
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(HINT_LANGUAGES),
        metadata={
            "description": "The language the comment is expected in (the survey's): taken unless the "
            "text clearly says otherwise; lets short answers (\"9/10\", an emoji, one word) be scored."
        },
    )


def _within_text_limit(text: str) -> None:
    # SENTIMENT_MAX_TEXT_CHARS: scoring time grows with the text.
    limit = current_limits().sentiment_text_chars
    if len(text) > limit:
        raise ValidationError(f"At most {limit} characters.")


class AnalyzeSchema(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=[validate.Length(min=1), _within_text_limit])
    language = _language_hint()


class AnalyzeBatchSchema(Schema):
    class Meta:
        unknown = RAISE

    texts = fields.List(
        fields.String(validate=_within_text_limit),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH),
    )
    language = _language_hint()

    @validates_schema
    def _within_batch_limit(self, data: dict, **_kwargs) -> None:
        # SENTIMENT_MAX_BATCH_CHARS: about a second of scoring on one core, so no batch ties a worker up.
        limit = current_limits().sentiment_batch_chars
        if sum(map(len, data.get("texts", []))) > limit:
            raise ValidationError(f"At most {limit} characters in all.", "texts")


class AnalysisSchema(Schema):
    polarity = fields.Float(allow_none=True, metadata={"description": "-1 (negative) to 1 (positive)"})
    subjectivity = fields.Float(allow_none=True, metadata={"description": "0 (objective) to 1 (subjective)"})
    label = fields.String(metadata={"description": "negative, neutral, positive, or unscored"})
    language = fields.String(metadata={"description": "en, tr, unknown, or unsupported"})
    key_phrases = fields.List(fields.String())
    analyzer = fields.String()
    topics = fields.List(
        fields.String(),
        metadata={"description": "What the comment speaks of (delivery, support, price, billing, ...)"},
    )


class AnalysisBatchSchema(Schema):
    results = fields.List(fields.Nested(AnalysisSchema))
