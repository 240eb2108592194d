"""NPS comments as customers write them: rules on top of a language's lexicon analyzer.

Lexicons read words; customers often complain without a sentiment word ("Two weeks and the
replacement never came", "Teknisyen gelmedi, arayan da olmadı"), praise by double negation ("Could not
have asked for more", "Hiçbir eksiği yok"), wrap a complaint in praise ("Wonderful, on hold for an hour
again"), give their verdict after "but"/"ama", suggest a feature without any feeling, or answer with
"9/10" or an emoji. `CommentReader` reads a comment the way a success-team member would:

1. A short answer that is a score ("9/10", "3/5") or an emoji takes that score's or emoji's feeling.
2. With a contrast word ("but", "however", "ama", "fakat", "ancak"), the clause after the last one
   gives the verdict when it has one; the clause before only shades it.
3. In a clause, praise by double negation reads positive; a complaint cue (an unmet expectation, an
   event that hurts: "still waiting", "nobody called back", "charged twice", "hâlâ gelmedi") makes it
   negative whatever praise words surround it, which is how sarcasm reads; a suggestion ("it would be
   nice to have", "olsa iyi olur") with neither is neutral, whatever "nice" says.
The cues are in `comment_cues.py`; the steps were fitted on the fitting half of bench/data/
nps_comments.csv (bench/sentiment_bench.py reports the other half).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.sentiment.analysis import comment_cues
from services.sentiment.analysis.cue_matcher import CueMatcher
from services.sentiment.analysis.scoring import Analyzer, label_for
from services.sentiment.analysis.stopwords import ENGLISH_STOPWORDS, TURKISH_STOPWORDS
from services.sentiment.analysis.turkish import fold_turkish

# How far one cue moves a clause's polarity, on the analyzers' -1..1 scale; fitted on the fitting half.
COMPLAINT_STEP = 0.45
PRAISE_STEP = 0.45
SUGGESTION_DAMPING = 0.1
# Weight of the clause before a contrast word when the clause after it has a verdict.
BEFORE_CONTRAST_WEIGHT = 0.25
# A score written as a fraction: at least this share of the scale reads positive, at most the other
# share negative (NPS: 8/10 and up is a promoter's or a happy passive's, 4/10 and below a detractor's).
FRACTION_POSITIVE_FROM, FRACTION_NEGATIVE_UPTO = 0.8, 0.4
SHORT_ANSWER_POLARITY = 0.6

_LETTER = re.compile(r"[^\W\d_]")
_FRACTION = re.compile(r"(?<![\d/])(\d{1,3}(?:[.,]\d)?)\s*/\s*(5|10|100)(?![\d/])")


@dataclass(frozen=True)
class _Cues:
    # praise, complaint and suggestion in one alternation, read in one pass: praise comes first, so
    # "can't complain" is taken as praise before "complain" could be read as a complaint.
    cues: re.Pattern[str]
    contrast: re.Pattern[str]
    neutral_answers: frozenset[str]


def _cues(language: str) -> _Cues:
    table = comment_cues.CUES[language]
    return _Cues(
        CueMatcher(
            [(kind, cue) for kind in ("praise", "complaint", "suggestion") for cue in table[kind]],
            common=ENGLISH_STOPWORDS if language == "en" else TURKISH_STOPWORDS,
        ),
        re.compile(r"\b(?:" + "|".join(table["contrast"]) + r")\b"),
        comment_cues.SHORT_NEUTRAL[language],
    )


def fraction_feeling(text: str) -> float | None:
    """+1, 0 or -1 for a score written as a fraction ("9/10", "2 / 5"), None without one."""
    match = _FRACTION.search(text) if "/" in text else None
    if match is None:
        return None
    value, scale = float(match.group(1).replace(",", ".")), float(match.group(2))
    if value > scale:
        return None
    share = value / scale
    return 1.0 if share >= FRACTION_POSITIVE_FROM else -1.0 if share <= FRACTION_NEGATIVE_UPTO else 0.0


def emoji_feeling(text: str) -> float | None:
    """The summed feeling of the emoji in a text (+1 each for 👍 😀 ❤️..., -1 for 👎 😡...), None
    when it has none of them."""
    total, found = 0.0, False
    for char in text:
        if ord(char) < 0x2000:
            continue
        value = comment_cues.EMOJI.get(char)
        if value is not None:
            total += value
            found = True
    return total if found else None


def short_answer_polarity(text: str) -> float | None:
    """Polarity of an answer that is only a score or emoji ("9/10", "👍", "5/5 🙂"), else None."""
    if _LETTER.search(text):  # a fraction has no letters: any letter means words to read
        return None
    feelings = [f for f in (fraction_feeling(text), emoji_feeling(text)) if f is not None]
    if not feelings:
        return None
    total = sum(feelings)
    return SHORT_ANSWER_POLARITY * ((total > 0) - (total < 0))


class CommentReader:
    """A language's lexicon analyzer plus the rules above: the light tier's analyzer for NPS comments."""

    def __init__(self, language: str, analyzer: Analyzer) -> None:
        self.language = language
        self.name = f"{analyzer.name}+nps-v1"
        self.thresholds = analyzer.thresholds
        self._analyzer = analyzer
        self._cues = _cues(language)
        # Turkish cues are written without Turkish letters, so "hâlâ gelmedi" and "hala gelmedi" match.
        self._normalize = fold_turkish if language == "tr" else str.lower

    def score(self, text: str) -> tuple[float, float]:
        short = short_answer_polarity(text)
        if short is not None:
            return short, 1.0 if short else 0.0
        normalized = self._normalize(text.replace("’", "'"))
        if normalized.strip(" .!?") in self._cues.neutral_answers:
            return 0.0, 0.0
        # One pass over the comment finds its cues; a clause counts those that start inside it.
        cues: list[tuple[int, str | None]] = list(self._cues.cues.find(normalized))
        whole = self._clause(text, cues)
        contrasts = list(self._cues.contrast.finditer(normalized))
        if contrasts:
            start, end = contrasts[-1].span()
            after_polarity, subjectivity = self._clause(text[end:], [c for c in cues if c[0] >= end])
            verdict = label_for(after_polarity, self.thresholds)
            # Only a clause after "but" that disagrees with the one before decides alone; when both
            # lean the same way, the whole comment says it better (and the analyzers weigh "but" too).
            # The clause before is read only when the whole comment disagrees with the one after.
            if verdict not in ("neutral", label_for(whole[0], self.thresholds)):
                before = self._clause(text[:start], [c for c in cues if c[0] < start])
                if verdict != label_for(before[0], self.thresholds):
                    polarity = after_polarity + BEFORE_CONTRAST_WEIGHT * before[0]
                    # The verdict stays the after clause's, however strong the clause before.
                    if (polarity > 0) != (after_polarity > 0):
                        polarity = after_polarity * (1 - BEFORE_CONTRAST_WEIGHT)
                    return _clip(polarity), subjectivity
        return whole

    def label(self, polarity: float) -> str:
        return label_for(polarity, self.thresholds)

    def cue_counts(self, text: str) -> tuple[int, int, int, int]:
        """The comment's praise, complaint and suggestion cues and contrast words, counted: what the
        rules above read, given to the model tier's head as features (the score does not use this)."""
        normalized = self._normalize(text.replace("’", "'"))
        kinds = [kind for _, kind in self._cues.cues.find(normalized)]
        contrasts = len(self._cues.contrast.findall(normalized))
        return kinds.count("praise"), kinds.count("complaint"), kinds.count("suggestion"), contrasts

    def _clause(self, text: str, cues: list[tuple[int, str | None]]) -> tuple[float, float]:
        polarity, subjectivity = self._analyzer.score(text)
        kinds = [kind for _, kind in cues]
        praise, complaints = kinds.count("praise"), kinds.count("complaint")
        fraction = fraction_feeling(text)
        if fraction:
            polarity += SHORT_ANSWER_POLARITY * fraction
        if complaints:
            polarity = min(polarity, 0.0) - COMPLAINT_STEP * complaints
        elif praise:
            polarity = max(polarity, 0.0) + PRAISE_STEP * praise
        elif "suggestion" in kinds:
            polarity *= SUGGESTION_DAMPING
        return _clip(polarity), subjectivity


def _clip(polarity: float) -> float:
    return max(-1.0, min(1.0, polarity))
