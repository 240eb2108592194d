"""English scoring: TextBlob and VADER alone (the baselines), and the blend of both that is the default.

TextBlob's PatternAnalyzer averages adjective scores and misses plain feedback ("The support agent was
not helpful at all" is 0.0); VADER handles negation and emphasis but reads "support" as praise. The
blend feeds both scores and a few surface features to a ridge regression fitted offline on
human-rated text (bench/fit_sentiment.py), with its label thresholds fitted alongside.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

from services.sentiment.analysis import en_blend_params
from services.sentiment.analysis.scoring import CONVENTIONAL_THRESHOLDS, label_for

# Customer-service words VADER's lexicon lacks or misreads (its scale, -4..+4). "support" and "care"
# name departments in feedback ("the support agent", "customer care"), not approval.
CUSTOMER_SERVICE_VALENCES: dict[str, float] = {
    "support": 0.0,
    "care": 0.0,
    "late": -1.3,
    "slow": -1.3,
    "slowly": -1.1,
    "fast": 1.3,
    "quick": 1.2,
    "quickly": 1.0,
    "promptly": 1.3,
    "prompt": 1.2,
    "unhelpful": -1.8,
    "unresponsive": -1.7,
    "canceled": -1.0,
    "overcharged": -2.0,
    "hassle": -1.5,
    "seamless": 2.0,
    "smooth": 1.5,
    "smoothly": 1.5,
    "polite": 1.9,
    "knowledgeable": 1.8,
    "reliable": 1.7,
    "professional": 1.5,
    "expensive": -1.0,
    "overpriced": -1.8,
    "affordable": 1.3,
    "crashed": -1.7,
    "crashes": -1.7,
    "buggy": -1.8,
    "hassle-free": 2.0,
    "rude": -2.3,
    "faulty": -1.9,
    "incorrect": -1.5,
}


@cache
def _pattern_sentiment(stock: bool = False) -> Callable[[str], Any]:
    """TextBlob's PatternAnalyzer scorer, loaded once.

    textblob.en.sentiment is what TextBlob(text).sentiment runs underneath; calling it directly skips
    building a Blob and the namedtuple class PatternAnalyzer creates on every call. Unless `stock`,
    it is a copy whose lexicon lookups are plain dict methods: the library's lazy dict routes every
    `word in lexicon` through a Python-level loader check, a fifth of its time; and its tokenizer is
    `_fast_find_tokens`. Same class, same data, same scores (tests/unit/sentiment compares them).
    """
    from shared.imports import submodule_without_package_init

    # Not the textblob package's __init__: it imports NLTK (some 28 MiB), which this scorer never calls.
    en = submodule_without_package_init("textblob", "en")
    Sentiment, sentiment = en.Sentiment, en.sentiment

    sentiment("warm up")  # loads the lexicon now rather than inside the first request
    if stock:
        return sentiment

    class LoadedSentiment(Sentiment):  # type: ignore[misc]
        __contains__ = dict.__contains__
        __getitem__ = dict.__getitem__
        __iter__ = dict.__iter__
        __len__ = dict.__len__
        get = dict.get
        items = dict.items

    loaded = LoadedSentiment.__new__(LoadedSentiment)
    dict.update(loaded, dict.items(sentiment))
    # Settings (path, negations, modifiers, tokenizer...), not the loader's per-instance method patches.
    loaded.__dict__.update(
        {name: value for name, value in vars(sentiment).items() if not hasattr(dict, name)}
    )
    loaded.tokenizer = _fast_find_tokens(sys.modules["textblob._text"], loaded.tokenizer)
    return loaded


def _fast_find_tokens(text_module: Any, stock: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """textblob's English tokenizer (parser.find_tokens: _text.find_tokens with its defaults), same
    output, a third of the time: two thirds of it went to checking every token for leading and
    trailing punctuation one tuple entry at a time, and to ten module-level re.sub calls for literal
    contractions. Here a token with no punctuation at either end is taken as it is (what the library's
    loops do with it), the others go through the library's loops verbatim, and the literal
    substitutions are str.replace. tests/unit/sentiment compares it with the library's on every
    held-out text."""
    t_ = text_module
    punctuation = tuple(t_.PUNCTUATION.replace(".", ""))
    trailing = (*punctuation, ".")
    leading_set, trailing_set = frozenset(punctuation), frozenset(trailing)
    replace = t_.replacements
    abbreviations, eos = t_.ABBREVIATIONS, t_.EOS
    abbr1, abbr2, abbr3 = t_.RE_ABBR1, t_.RE_ABBR2, t_.RE_ABBR3
    token_re, sarcasm, emoticons = t_.TOKEN, t_.RE_SARCASM, t_.RE_EMOTICONS
    linebreak, spaces = re.compile(r"\n{2,}"), re.compile(r"\s+")
    # re.sub with these patterns and replacements (no metacharacters, no escapes) is str.replace.
    literal = all(re.escape(a) == a and "\\" not in b for a, b in replace.items())
    if not literal:  # another textblob version: keep its own
        return stock
    stops = ("...", ".", "!", "?", eos)
    closers = ("'", '"', "”", "’", "...", ".", "!", "?", ")", eos)

    def emoticon(m: re.Match[str]) -> str:
        return m.group(1).replace(" ", "") + m.group(2)

    def find_tokens(string: str) -> list[str]:
        string = str(string)
        for a, b in replace.items():
            string = string.replace(a, b)
        string = (
            string.replace("“", " “ ")
            .replace("”", " ” ")
            .replace("‘", " ‘ ")
            .replace("’", " ’ ")
            .replace("'", " ' ")
            .replace('"', ' " ')
        )
        string = string.replace("\r\n", "\n")
        if "\n\n" in string:
            string = linebreak.sub(f" {eos} ", string)
        string = spaces.sub(" ", string)
        tokens: list[str] = []
        for t in token_re.findall(string + " "):
            if t[0] not in leading_set and t[-1] not in trailing_set:
                tokens.append(t)  # the library's loops leave it as it is
                continue
            tail = []
            while t.startswith(punctuation) and t not in replace:
                if t.startswith(punctuation):
                    tokens.append(t[0])
                    t = t[1:]
            while t.endswith(trailing) and t not in replace:
                if t.endswith(punctuation):
                    tail.append(t[-1])
                    t = t[:-1]
                if t.endswith("..."):
                    tail.append("...")
                    t = t[:-3].rstrip(".")
                if t.endswith("."):
                    if (
                        t in abbreviations
                        or abbr1.match(t) is not None
                        or abbr2.match(t) is not None
                        or abbr3.match(t) is not None
                    ):
                        break
                    else:
                        tail.append(t[-1])
                        t = t[:-1]
            if t != "":
                tokens.append(t)
            tokens.extend(reversed(tail))
        sentences: list[list[str]] = [[]]
        i, j = 0, 0
        while j < len(tokens):
            if tokens[j] in stops:
                while j < len(tokens) and tokens[j] in closers:
                    if tokens[j] in ("'", '"') and sentences[-1].count(tokens[j]) % 2 == 0:
                        break
                    j += 1
                sentences[-1].extend(t for t in tokens[i:j] if t != eos)
                sentences.append([])
                i = j
            j += 1
        sentences[-1].extend(tokens[i:j])
        joined = (" ".join(s) for s in sentences if len(s) > 0)
        return [emoticons.sub(emoticon, sarcasm.sub("(!)", s)) for s in joined]

    return find_tokens


@cache
def _vader_class() -> type:
    from vaderSentiment.vaderSentiment import (
        BOOSTER_DICT,
        N_SCALAR,
        NEGATE,
        SPECIAL_CASES,
        SentimentIntensityAnalyzer,
        SentiText,
    )

    negations = frozenset(NEGATE)

    def negated(word: str) -> bool:
        # vaderSentiment.negated([word]) for a lower-cased word: it tests each of NEGATE in turn.
        return word in negations or "n't" in word

    class AsciiFastVader(SentimentIntensityAnalyzer):  # type: ignore[misc]
        """VADER with the same scores, minus its per-character emoji scan for ASCII text.

        polarity_scores() first rebuilds the text character by character, replacing emoji with their
        descriptions: a quarter of its time on a typical comment. No emoji is ASCII, so for ASCII text
        that loop returns the text unchanged and the rest below is the library's body (3.3.2) verbatim.
        tests/unit/sentiment checks the scores match the library's.
        """

        def polarity_scores(self, text: str) -> dict[str, float]:
            if not text.isascii():
                return super().polarity_scores(text)
            text = text.strip()
            sentitext = SentiText(text)
            sentiments: list[float] = []
            words_and_emoticons = sentitext.words_and_emoticons
            for i, item in enumerate(words_and_emoticons):
                valence = 0
                if item.lower() in BOOSTER_DICT:
                    sentiments.append(valence)
                    continue
                if (
                    i < len(words_and_emoticons) - 1
                    and item.lower() == "kind"
                    and words_and_emoticons[i + 1].lower() == "of"
                ):
                    sentiments.append(valence)
                    continue
                sentiments = self.sentiment_valence(valence, sentitext, item, i, sentiments)
            sentiments = self._but_check(words_and_emoticons, sentiments)
            return self.score_valence(sentiments, text)

        # The library's _negation_check and _special_idioms_check lower-case the whole comment each time
        # they look at a word or three of it (a lexicon word's three predecessors: up to four times a
        # word). Below they are the library's bodies (3.3.2) on one lower-cased copy per comment.
        _lowered_for: tuple[list[str], list[str]] = ([], [])

        def _lower(self, words: list[str]) -> list[str]:
            # One tuple read: another thread's comment is never taken for this one (its list differs).
            done = self._lowered_for
            if done[0] is words:
                return done[1]
            lowered = [str(w).lower() for w in words]
            self._lowered_for = (words, lowered)
            return lowered

        def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:
            lower = self._lower(words)
            if start_i == 0 and negated(lower[i - (start_i + 1)]):
                valence = valence * N_SCALAR
            if start_i == 1:
                if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
                    valence = valence * 1.25
                elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
                    valence = valence
                elif negated(lower[i - (start_i + 1)]):
                    valence = valence * N_SCALAR
            if start_i == 2:
                if (
                    lower[i - 3] == "never"
                    and (lower[i - 2] == "so" or lower[i - 2] == "this")
                    or (lower[i - 1] == "so" or lower[i - 1] == "this")
                ):
                    valence = valence * 1.25
                elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
                    valence = valence
                elif negated(lower[i - (start_i + 1)]):
                    valence = valence * N_SCALAR
            return valence

        def _special_idioms_check(self, valence: float, words: list[str], i: int) -> float:
            lower = self._lower(words)
            onezero = f"{lower[i - 1]} {lower[i]}"
            twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
            twoone = f"{lower[i - 2]} {lower[i - 1]}"
            threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
            threetwo = f"{lower[i - 3]} {lower[i - 2]}"
            for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
                if seq in SPECIAL_CASES:
                    valence = SPECIAL_CASES[seq]
                    break
            if len(lower) - 1 > i:
                zeroone = f"{lower[i]} {lower[i + 1]}"
                if zeroone in SPECIAL_CASES:
                    valence = SPECIAL_CASES[zeroone]
            if len(lower) - 1 > i + 1:
                zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
                if zeroonetwo in SPECIAL_CASES:
                    valence = SPECIAL_CASES[zeroonetwo]
            for n_gram in (threetwoone, threetwo, twoone):
                if n_gram in BOOSTER_DICT:
                    valence = valence + BOOSTER_DICT[n_gram]
            return valence

    return AsciiFastVader


@cache
def _vader(customer_service: bool, stock: bool = False) -> Any:
    """A VADER instance, built once: the library's own class for the baselines (`stock`), the fast
    subclass for the blend."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer() if stock else _vader_class()()
    if customer_service:
        # Each SentimentIntensityAnalyzer owns its lexicon dict, so this changes no other instance.
        vader.lexicon.update(CUSTOMER_SERVICE_VALENCES)
    return vader


@cache
def english_opinion_words() -> frozenset[str]:
    """Words of VADER's and TextBlob's lexicons: English evidence for language detection."""
    vader_words = {word for word in _vader(False, stock=True).lexicon if word.isalpha()}
    return frozenset(vader_words | {word for word in dict.keys(_pattern_sentiment()) if word.isalpha()})


class TextBlobAnalyzer:
    """TextBlob's PatternAnalyzer as it ships: polarity and subjectivity averaged over known words."""

    name = "textblob-0.20-pattern"
    thresholds = CONVENTIONAL_THRESHOLDS

    def __init__(self) -> None:
        self._sentiment = _pattern_sentiment(stock=True)

    def score(self, text: str) -> tuple[float, float]:
        polarity, subjectivity = self._sentiment(text)[:2]
        return polarity, subjectivity

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)


class VaderAnalyzer:
    """VADER's compound score as it ships; subjectivity is the non-neutral share of the text."""

    name = "vader-3.3-compound"
    thresholds = CONVENTIONAL_THRESHOLDS

    def __init__(self, customer_service: bool = False) -> None:
        self._vader = _vader(customer_service, stock=True)
        if customer_service:
            self.name = "vader-3.3-compound+cs-lexicon"

    def score(self, text: str) -> tuple[float, float]:
        scores = self._vader.polarity_scores(text)
        return scores["compound"], 1.0 - scores["neu"]

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)


def blend_features(
    vader_scores: dict[str, float], tb_polarity: float, tb_subjectivity: float, text: str
) -> list[float]:
    """The blend's inputs, in the order of en_blend_params.FEATURES. Shared with the fitting script so
    that what is fitted is exactly what runs."""
    compound = vader_scores["compound"]
    neutral = vader_scores["neu"]
    words = text.count(" ") + 1
    return [
        1.0,
        compound,
        vader_scores["pos"],
        vader_scores["neg"],
        neutral,
        tb_polarity,
        tb_subjectivity,
        compound * abs(compound),
        tb_polarity * tb_subjectivity,
        compound * tb_polarity,
        math.log1p(words),
        float(min(text.count("!"), 3)),
        float(min(text.count("?"), 3)),
        compound * neutral,
        tb_polarity * abs(tb_polarity),
        float((compound > 0.05) - (compound < -0.05)),
        float((tb_polarity > 0) - (tb_polarity < 0)),
    ]


FEATURE_NAMES: tuple[str, ...] = (
    "bias",
    "vader_compound",
    "vader_pos",
    "vader_neg",
    "vader_neu",
    "textblob_polarity",
    "textblob_subjectivity",
    "compound_signed_square",
    "polarity_x_subjectivity",
    "compound_x_polarity",
    "log_words",
    "exclamations",
    "questions",
    "compound_x_neu",
    "polarity_signed_square",
    "compound_sign",
    "polarity_sign",
)


class EnglishBlendAnalyzer:
    """The default English analyzer: a fitted linear blend of VADER (with customer-service words) and
    TextBlob plus surface features; polarity clipped to -1..1, subjectivity is TextBlob's."""

    def __init__(self, params: Any = en_blend_params) -> None:
        if tuple(params.FEATURES) != FEATURE_NAMES:
            raise ValueError("en_blend_params was fitted for other features; run bench/fit_sentiment.py")
        self.name: str = params.NAME
        self.thresholds: tuple[float, float] = tuple(params.THRESHOLDS)  # type: ignore[assignment]
        self._weights: tuple[float, ...] = tuple(params.WEIGHTS)
        self._vader = _vader(params.CUSTOMER_SERVICE_LEXICON)
        self._sentiment = _pattern_sentiment()

    def score(self, text: str) -> tuple[float, float]:
        tb_polarity, tb_subjectivity = self._sentiment(text)[:2]
        features = blend_features(self._vader.polarity_scores(text), tb_polarity, tb_subjectivity, text)
        polarity = sum(w * x for w, x in zip(self._weights, features, strict=True))
        return max(-1.0, min(1.0, polarity)), tb_subjectivity

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)
