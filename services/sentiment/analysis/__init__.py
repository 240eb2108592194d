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
    "LIGHT",
    "MODEL",
    "MODEL_SMALL",
    "SUPPORTED_LANGUAGES",
    "TIERS",
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


# SENTIMENT_ANALYZER: the light tier (lexicons and rules) or a model tier (sentence embeddings and a fitted
# head for English, the light tier for Turkish; see model_tier.py): all-mpnet-base-v2's first seven layers
# (the default), or all-MiniLM-L6-v2 fine-tuned (about 2.2x the texts per second, a little less accurate).
LIGHT, MODEL, MODEL_SMALL = "light", "model", "model-small"
TIERS = (LIGHT, MODEL, MODEL_SMALL)


@cache
def _english_model(tier: str) -> Analyzer:
    from services.sentiment.analysis.model_tier import (
        MINILM_HEAD_PATH,
        MPNET_HEAD_PATH,
        ModelHead,
        ModelReader,
    )

    if tier == MODEL:
        from services.sentiment.analysis.mpnet import encoder  # numpy, onnxruntime, the model

        head = ModelHead.load(MPNET_HEAD_PATH)
    else:
        from services.sentiment.analysis.minilm import encoder

        head = ModelHead.load(MINILM_HEAD_PATH)
    return ModelReader(_english(), encoder(), head)


def analyzer_for(language: str, tier: str = LIGHT) -> Analyzer | None:
    """The analyzer of a language in a tier, built once per process; None for one we do not score."""
    if language == ENGLISH:
        return _english() if tier == LIGHT else _english_model(tier)
    if language == TURKISH:
        return _turkish()
    return None


def analyze(
    text: str,
    *,
    language: str | None = None,
    key_phrases: bool = True,
    topics: TopicTagger | None = None,
    tier: str = LIGHT,
) -> Analysis:
    """Language, polarity, label, key phrases and topics of one comment; `language` is a hint ("en",
    "tr"), `topics` the deployment's topic list (the default one when None), `tier` one of TIERS."""
    return _analyze_unique([text], language, key_phrases, topics, tier)[0]


def analyze_batch(
    texts: Sequence[str],
    *,
    language: str | None = None,
    key_phrases: bool = True,
    topics: TopicTagger | None = None,
    tier: str = LIGHT,
) -> list[Analysis]:
    """`analyze` for many comments, in order, with one language hint for all. Repeated texts
    ("Great", "Thanks!") are scored once; the model tier encodes a batch's texts together."""
    unique = list(dict.fromkeys(texts))
    done = dict(zip(unique, _analyze_unique(unique, language, key_phrases, topics, tier), strict=True))
    # Each result gets its own lists, so changing one cannot change a repeat.
    return [
        replace(done[text], key_phrases=list(done[text].key_phrases), topics=list(done[text].topics))
        for text in texts
    ]


def _analyze_unique(
    texts: Sequence[str], hint: str | None, key_phrases: bool, topics: TopicTagger | None, tier: str
) -> list[Analysis]:
    tagger = topics or default_topics()
    tokens = [tokenize(text) for text in texts]
    languages = [detect_language(text, words, hint=hint) for text, words in zip(texts, tokens, strict=True)]
    scores: dict[int, tuple[float, float]] = {}
    for language in SUPPORTED_LANGUAGES:
        analyzer = analyzer_for(language, tier)
        indexes = [i for i, found in enumerate(languages) if found == language]
        if not indexes or analyzer is None:
            continue
        score_many = getattr(analyzer, "score_many", None)
        found_scores = (
            score_many([texts[i] for i in indexes])
            if score_many is not None
            else [analyzer.score(texts[i]) for i in indexes]
        )
        scores.update(zip(indexes, found_scores, strict=True))
    results = []
    for i, (text, language) in enumerate(zip(texts, languages, strict=True)):
        analyzer = analyzer_for(language, tier)
        if analyzer is None:
            results.append(Analysis(None, None, UNSCORED, language, [], NO_ANALYZER))
            continue
        polarity, subjectivity = scores[i]
        phrases = extract_key_phrases(text, language, tokens=tokens[i]) if key_phrases else []
        results.append(
            Analysis(
                polarity,
                subjectivity,
                analyzer.label(polarity),
                language,
                phrases,
                analyzer.name,
                tagger.tag(text, language),
            )
        )
    return results
