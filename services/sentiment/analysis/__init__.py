"""Sentiment of short customer comments (NPS survey answers) in English and Turkish.

`analyze(text, language=hint)` detects the language (see `language.detect_language`; the hint, the
survey's language, is taken unless the text clearly says otherwise), scores English with the fitted
blend of VADER and TextBlob (`english.EnglishBlendAnalyzer`), Turkish with a stem lexicon
(`turkish.TurkishLexiconAnalyzer`), each read through the rules of NPS comments
(`comments.CommentReader`: complaints without sentiment words, sarcasm, double negation, verdicts after
"but", suggestions, scores and emoji), and extracts key phrases and topics. Text in another language,
or with too little to go on and no hint, is left unscored rather than guessed at. No I/O: lexicons ship
with the packages and are loaded once per process, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from services.sentiment.analysis.comments import CommentReader
from services.sentiment.analysis.english import EnglishBlendAnalyzer, TextBlobAnalyzer, VaderAnalyzer
from services.sentiment.analysis.key_phrases import extract_key_phrases
from services.sentiment.analysis.language import (
    ENGLISH,
    TURKISH,
    UNKNOWN,
    UNSUPPORTED,
    detect_language,
    tokenize,
)
from services.sentiment.analysis.scoring import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    UNSCORED,
    Analyzer,
    label_for,
)
from services.sentiment.analysis.topics import TopicTagger
from services.sentiment.analysis.turkish import TurkishLexiconAnalyzer

__all__ = [
    "SUPPORTED_LANGUAGES",
    "ENGLISH",
    "NEGATIVE",
    "NEUTRAL",
    "POSITIVE",
    "TURKISH",
    "UNKNOWN",
    "UNSCORED",
    "UNSUPPORTED",
    "Analysis",
    "Analyzer",
    "CommentReader",
    "EnglishBlendAnalyzer",
    "TextBlobAnalyzer",
    "TopicTagger",
    "TurkishLexiconAnalyzer",
    "VaderAnalyzer",
    "analyze",
    "analyze_batch",
    "analyzer_for",
    "default_topics",
    "detect_language",
    "extract_key_phrases",
    "label_for",
]

NO_ANALYZER = "none"


@dataclass(frozen=True)
class Analysis:
    """What the sentiment service says about one comment."""

    polarity: float | None  # -1..1, None when the language is unsupported or unknown
    subjectivity: float | None  # 0..1
    label: str  # "negative" | "neutral" | "positive" | "unscored"
    language: str  # "en" | "tr" | "unknown" | "unsupported"
    key_phrases: list[str]  # what the comment is about, no stop words
    analyzer: str  # the analyzer that produced the score, e.g. "en-blend-v1"; "none" when unscored
    topics: list[str] = field(default_factory=list)  # what it speaks of: "delivery", "support", ...


SUPPORTED_LANGUAGES = (ENGLISH, TURKISH)


@cache
def default_topics() -> TopicTagger:
    return TopicTagger()


@cache
def _english() -> CommentReader:
    return CommentReader(ENGLISH, EnglishBlendAnalyzer())


@cache
def _turkish() -> CommentReader:
    return CommentReader(TURKISH, TurkishLexiconAnalyzer())


def analyzer_for(language: str) -> Analyzer | None:
    """The default analyzer of a language, built once per process; None for one we do not score."""
    if language == ENGLISH:
        return _english()
    if language == TURKISH:
        return _turkish()
    return None


def analyze(
    text: str, *, language: str | None = None, key_phrases: bool = True, topics: TopicTagger | None = None
) -> Analysis:
    """Language, polarity, label, key phrases and topics of one comment; `language` is a hint ("en",
    "tr"), `topics` the deployment's topic list (the default one when None)."""
    tokens = tokenize(text)
    language = detect_language(text, tokens, hint=language)
    analyzer = analyzer_for(language)
    if analyzer is None:
        return Analysis(None, None, UNSCORED, language, [], NO_ANALYZER)
    polarity, subjectivity = analyzer.score(text)
    phrases = extract_key_phrases(text, language, tokens=tokens) if key_phrases else []
    tags = (topics or default_topics()).tag(text, language)
    return Analysis(polarity, subjectivity, analyzer.label(polarity), language, phrases, analyzer.name, tags)


def analyze_batch(
    texts: Sequence[str],
    *,
    language: str | None = None,
    key_phrases: bool = True,
    topics: TopicTagger | None = None,
) -> list[Analysis]:
    """`analyze` for many comments, in order, with one language hint for all. Repeated texts
    ("Great", "Thanks!") are scored once."""
    done: dict[str, Analysis] = {}
    results = []
    for text in texts:
        analysis = done.get(text)
        if analysis is None:
            analysis = done[text] = analyze(text, language=language, key_phrases=key_phrases, topics=topics)
            results.append(analysis)
        else:
            # Each result gets its own lists, so changing one cannot change a repeat.
            results.append(
                replace(analysis, key_phrases=list(analysis.key_phrases), topics=list(analysis.topics))
            )
    return results
