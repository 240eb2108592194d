"""The sentiment service's HTTP API."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from .analysis import analyze, analyze_batch
from .runtime import SentimentRuntime
from .schemas import AnalysisBatchSchema, AnalysisSchema, AnalyzeBatchSchema, AnalyzeSchema

blp = Blueprint("analyze", __name__, url_prefix="/v1", description="Sentiment of open-text answers")


@blp.route("/analyze")
class Analyze(MethodView):
    @blp.arguments(AnalyzeSchema)
    @blp.response(200, AnalysisSchema)
    def post(self, body):
        """Polarity, subjectivity, label, language and key phrases of one text."""
        runtime = _runtime()
        return analyze(body["text"], language=body["language"], topics=runtime.topics, tier=runtime.tier)


@blp.route("/analyze/batch")
class AnalyzeBatch(MethodView):
    @blp.arguments(AnalyzeBatchSchema)
    @blp.response(200, AnalysisBatchSchema)
    def post(self, body):
        """The same for up to 1,000 texts, in their order."""
        runtime = _runtime()
        texts, language = body["texts"], body["language"]
        return {"results": analyze_batch(texts, language=language, topics=runtime.topics, tier=runtime.tier)}


def _runtime() -> SentimentRuntime:
    return current_app.extensions["closeloop.sentiment"]
