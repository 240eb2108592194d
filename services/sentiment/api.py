"""The sentiment service's HTTP API."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from .runtime import SentimentRuntime
from .schemas import AnalysisBatchSchema, AnalysisSchema, AnalyzeBatchSchema, AnalyzeSchema

# The analysis is imported in the views: it loads with the first text analysed (see .runtime).

blp = Blueprint("analyze", __name__, url_prefix="/v1", description="Sentiment of open-text answers")


@blp.route("/analyze")
class Analyze(MethodView):
    @blp.arguments(AnalyzeSchema)
    @blp.response(200, AnalysisSchema)
    def post(self, body):
        """Polarity, subjectivity, label, language and key phrases of one text."""
        from .analysis import analyze  # noqa: PLC0415 (on first use, see above)

        runtime = _runtime()
        return analyze(body["text"], language=body["language"], topics=runtime.topics, tier=runtime.tier)


@blp.route("/analyze/batch")
class AnalyzeBatch(MethodView):
    @blp.arguments(AnalyzeBatchSchema)
    @blp.response(200, AnalysisBatchSchema)
    def post(self, body):
        """The same for up to 1,000 texts, in their order."""
        from .analysis import analyze_batch  # noqa: PLC0415 (on first use, see above)

        runtime = _runtime()
        texts, language = body["texts"], body["language"]
        return {"results": analyze_batch(texts, language=language, topics=runtime.topics, tier=runtime.tier)}


def _runtime() -> SentimentRuntime:
    return current_app.extensions["closeloop.sentiment"]
