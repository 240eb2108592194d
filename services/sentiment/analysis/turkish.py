"""Turkish comment scoring: a hand-written lexicon matched on stems, with negation and intensity rules.

Words are compared after folding Turkish letters to ASCII (ç→c, ğ→g, ı→i, ö→o, ş→s, ü→u), so comments
typed on a keyboard without Turkish letters ("tesekkurler, cok hizli geldi") score like the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from services.sentiment.analysis.scoring import label_for
from services.sentiment.analysis.turkish_lexicon import (
    TURKISH_AUXILIARY_VERBS,
    TURKISH_CONTRAST_WORDS,
    TURKISH_INTENSIFIERS,
    TURKISH_NEGATED_VERB_VALENCES,
    TURKISH_NEGATORS,
    TURKISH_VALENCES,
)

_FOLD = str.maketrans(
    {
        "İ": "i",
        "I": "i",
        "ı": "i",
        "ç": "c",
        "Ç": "c",
        "ğ": "g",
        "Ğ": "g",
        "ö": "o",
        "Ö": "o",
        "ş": "s",
        "Ş": "s",
        "ü": "u",
        "Ü": "u",
        "â": "a",
        "Â": "a",
        "î": "i",
        "û": "u",
        "’": "'",
    }
)
# Words, plus sentence punctuation as its own token: negation and intensity never reach across it.
_TOKEN_RE = re.compile(r"[^\W\d_]+|[.!?;,]")
_CLAUSE_BREAKS = frozenset(".!?;,")

# What may follow a verb stem when the verb is negated: an optional passive (-il/-ul/-in/-un) and
# ability (-(y)a/-(y)e), then the negative -ma/-me in its past, aorist, conditional, future, relative,
# imperative and progressive forms. Deliberately not plain "-me": that is also the verbal noun
# ("ödeme", payment), and "-mede"/"-meyi" are its cases.
_NEGATED_VERB_SUFFIX = re.compile(
    r"^(?:[iu][ln])?(?:y?[ae])?(?:m[ae](?:di|d[ae]n|z|m|s[ae]|y[ae]c|y[ae]n|yin|yiz|y[ae]l)|m[iu]yo)"
)
_WITHOUT_SUFFIX = ("siz", "suz")  # -sız/-siz/-suz/-süz after folding: "özensiz", "ilgisiz"

# VADER's scalars, so the two analyzers speak the same scale: flipping a positive word keeps about
# three quarters of its strength; "not bad" is milder praise than "good" is praise.
_FLIP_POSITIVE = -0.74
_FLIP_NEGATIVE = -0.6
_CONTRAST_BEFORE, _CONTRAST_AFTER = 0.5, 1.5
_NORMALIZATION_ALPHA = 15.0  # VADER's: polarity = sum / sqrt(sum² + alpha)
_EXCLAMATION_BOOST = 0.292
_NEGATION_WINDOW = 2


def fold_turkish(text: str) -> str:
    """Lower-case Turkish text and fold its letters to ASCII (İ/I/ı → i, ş → s, ...)."""
    return text.translate(_FOLD).lower()


def _fold_keys(table: dict[str, float]) -> dict[str, float]:
    return {fold_turkish(key): value for key, value in table.items()}


@dataclass
class _Stems:
    """Folded stem tables split into one-word and two-word entries, built once."""

    single: dict[str, float]
    double: dict[str, dict[str, float]]  # first word -> {second word's stem: value}
    longest: int


def _split_stems(table: dict[str, float]) -> _Stems:
    single: dict[str, float] = {}
    double: dict[str, dict[str, float]] = {}
    for key, value in _fold_keys(table).items():
        first, _, second = key.partition(" ")
        if second:
            double.setdefault(first, {})[second] = value
        else:
            single[key] = value
    return _Stems(single, double, max(map(len, single), default=0))


def _longest_stem(word: str, stems: dict[str, float], longest: int, shortest: int = 2) -> str | None:
    for end in range(min(len(word), longest), shortest - 1, -1):
        if word[:end] in stems:
            return word[:end]
    return None


@dataclass
class _Sentiment:
    position: int
    valence: float
    negated: bool = False


class TurkishLexiconAnalyzer:
    """Scores Turkish comments with a stem lexicon and rules for negation, intensity and contrast.

    - A word takes the valence of the longest lexicon stem it starts with.
    - "-sız/-siz" right after a stem reverses it ("sorun" -1.6, "özensiz" negative).
    - A negated verb ("beğenmedim", "gelmedi", "çalışmıyor") reverses its own stem; a negated
      auxiliary ("yardımcı olmadılar", "memnun kalmadım") or "değil"/"yok" reverses the sentiment word
      just before it; a negated verb with nothing to reverse may be a complaint in itself ("gelmedi").
    - Intensifiers ("çok", "gerçekten", "son derece") and downtoners ("biraz", "pek") scale the next
      sentiment word; what follows "ama"/"fakat" weighs more than what precedes it.
    Polarity is VADER's normalisation of the summed valences, in -1..1; subjectivity is the share of
    words that carry sentiment or intensity.
    """

    name = "tr-lexicon-v1"
    # Not fitted: a comment with no sentiment word scores exactly 0, so any clear score is a signal.
    thresholds: tuple[float, float] = (-0.05, 0.05)

    def __init__(self) -> None:
        self._valences = _split_stems(TURKISH_VALENCES)
        self._intensifiers = _split_stems(TURKISH_INTENSIFIERS)
        negated_verbs = _split_stems(TURKISH_NEGATED_VERB_VALENCES)
        self._negated_verbs = negated_verbs
        self._auxiliaries = {fold_turkish(verb): 0.0 for verb in TURKISH_AUXILIARY_VERBS}
        self._verb_longest = max(negated_verbs.longest, max(map(len, self._auxiliaries)))
        self._negators = tuple(fold_turkish(word) for word in TURKISH_NEGATORS)
        contrast = [fold_turkish(word) for word in TURKISH_CONTRAST_WORDS]
        self._contrast_single = frozenset(word for word in contrast if " " not in word)
        self._contrast_double = frozenset(tuple(word.split(" ", 1)) for word in contrast if " " in word)

    def score(self, text: str) -> tuple[float, float]:
        tokens = _TOKEN_RE.findall(fold_turkish(text))
        words = [token for token in tokens if token not in _CLAUSE_BREAKS]
        if not words:
            return 0.0, 0.0
        sentiments: list[_Sentiment] = []
        multiplier = 1.0
        contrast_at: int | None = None
        hits = 0
        skip_next = False
        for position, token in enumerate(tokens):
            if skip_next:
                skip_next = False
                continue
            if token in _CLAUSE_BREAKS:
                multiplier = 1.0
                continue
            following = tokens[position + 1] if position + 1 < len(tokens) else ""
            if token in self._contrast_single or (token, following) in self._contrast_double:
                contrast_at = position
                continue
            boost = self._intensity(token, following)
            if boost is not None:
                factor, width = boost
                multiplier *= factor
                skip_next = width == 2
                hits += 1
                continue
            if token.startswith(self._negators) and self._reverse_previous(sentiments, position, tokens):
                hits += 1
                continue
            found = self._sentiment_word(token, following, tokens, position)
            if found is None:
                continue
            valence, width, reverses_previous = found
            skip_next = width == 2
            if reverses_previous and self._reverse_previous(sentiments, position, tokens):
                hits += 1
                continue
            if valence:
                sentiments.append(_Sentiment(position, valence * multiplier))
                hits += 1
            multiplier = 1.0

        total = 0.0
        for sentiment in sentiments:
            valence = sentiment.valence
            if contrast_at is not None:
                valence *= _CONTRAST_AFTER if sentiment.position > contrast_at else _CONTRAST_BEFORE
            total += valence
        if total:
            total += math.copysign(min(text.count("!"), 4) * _EXCLAMATION_BOOST, total)
        polarity = total / math.sqrt(total * total + _NORMALIZATION_ALPHA)
        subjectivity = min(1.0, 2.0 * hits / len(words))
        return max(-1.0, min(1.0, polarity)), subjectivity

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)

    def _intensity(self, token: str, following: str) -> tuple[float, int] | None:
        pairs = self._intensifiers.double.get(token)
        if pairs:
            for second, factor in pairs.items():
                if following.startswith(second):
                    return factor, 2
        factor = self._intensifiers.single.get(token)
        return (factor, 1) if factor is not None else None

    def _sentiment_word(
        self, token: str, following: str, tokens: list[str], position: int
    ) -> tuple[float, int, bool] | None:
        """(valence, words used, whether it is a negated auxiliary reversing the word before)."""
        pairs = self._valences.double.get(token)
        if pairs:
            for second, value in pairs.items():
                if following.startswith(second):
                    return value, 2, False
        stem = _longest_stem(token, self._valences.single, self._valences.longest)
        if stem is not None and not (stem == "ilgili" and _after_instrumental(tokens, position)):
            value = self._valences.single[stem]
            rest = token[len(stem) :]
            if value and rest.startswith(_WITHOUT_SUFFIX):
                return -value * 0.9, 1, False
            if value and _NEGATED_VERB_SUFFIX.match(rest):
                return value * (_FLIP_POSITIVE if value > 0 else _FLIP_NEGATIVE), 1, False
            if value:
                return value, 1, False
        verb = self._negated_verb_stem(token)
        if verb is None:
            return None
        previous = tokens[position - 1] if position else ""
        compound = self._negated_verbs.double.get(previous, {}).get(verb)
        if compound is not None:
            return compound, 1, False
        is_auxiliary = verb in self._auxiliaries
        return self._negated_verbs.single.get(verb, 0.0), 1, is_auxiliary

    def _negated_verb_stem(self, token: str) -> str | None:
        for end in range(min(len(token) - 2, self._verb_longest), 1, -1):
            stem = token[:end]
            is_verb = stem in self._auxiliaries or stem in self._negated_verbs.single
            if is_verb and _NEGATED_VERB_SUFFIX.match(token[end:]):
                return stem
        return None

    @staticmethod
    def _reverse_previous(sentiments: list[_Sentiment], position: int, tokens: list[str]) -> bool:
        """Reverse the last sentiment word if it sits within the negation window, in the same clause."""
        if not sentiments:
            return False
        last = sentiments[-1]
        between = tokens[last.position + 1 : position]
        if last.negated or len(between) > _NEGATION_WINDOW or any(t in _CLAUSE_BREAKS for t in between):
            return False
        last.valence *= _FLIP_POSITIVE if last.valence > 0 else _FLIP_NEGATIVE
        last.negated = True
        return True


def _after_instrumental(tokens: list[str], position: int) -> bool:
    # "siparişimle ilgili" means "about my order", not "attentive".
    return position > 0 and tokens[position - 1].endswith(("la", "le"))
