"""The word-gated cue matcher finds exactly what the one alternation of all cues finds."""

from __future__ import annotations

import random
import re
from re import _parser as sre_parse

import pytest

from services.sentiment.analysis import comment_cues, cue_matcher
from services.sentiment.analysis.cue_matcher import _WILD, CueMatcher, _expand, necessary_words
from services.sentiment.analysis.stopwords import ENGLISH_STOPWORDS, TURKISH_STOPWORDS
from services.sentiment.analysis.topics import DEFAULT_TOPICS
from services.sentiment.analysis.turkish import fold_turkish

KINDS = ("praise", "complaint", "suggestion")


def alternation(table: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    groups = "|".join(f"(?P<{kind}>" + "|".join(table[kind]) + ")" for kind in KINDS)
    return re.compile(r"\b(?:" + groups + r")\b")


def samples(pattern: str, rng: random.Random, count: int) -> list[str]:
    """Texts a pattern may match: its ways through, unknown stretches filled with a word."""
    ways = _expand(sre_parse.parse(pattern)) or [("x",)]
    return [
        "".join(rng.choice(["3", "very", "x"]) if part is _WILD else part for part in way if part is _WILD
                or isinstance(part, str))
        for way in rng.sample(ways, min(count, len(ways)))
    ]


@pytest.mark.parametrize("language", ["en", "tr"])
@pytest.mark.parametrize("path", ["as chosen", "always gated", "always the alternation"])
def test_finds_what_the_one_alternation_finds(language: str, path: str, monkeypatch) -> None:
    if path == "always gated":
        monkeypatch.setattr(cue_matcher, "_LONG_TEXT", 10**9)
        monkeypatch.setattr(cue_matcher, "_MANY_CANDIDATES", 10**9)
    elif path == "always the alternation":
        monkeypatch.setattr(cue_matcher, "_LONG_TEXT", -1)
    table = comment_cues.CUES[language]
    common = ENGLISH_STOPWORDS if language == "en" else TURKISH_STOPWORDS
    matcher = CueMatcher([(kind, cue) for kind in KINDS for cue in table[kind]], common)
    reference = alternation(table)
    rng = random.Random(20)
    pieces = [text for kind in KINDS for cue in table[kind] for text in samples(cue, rng, 6)]
    filler = ["the", "and", "but", "it", "was", "ok", "bir", "ve", "ama", ",", ".", "!", "not", "no"]
    texts = []
    for _ in range(1500):  # cues side by side, overlapping, amid filler: where the order of patterns matters
        parts = rng.choices(pieces, k=rng.randint(1, 4)) + rng.choices(filler, k=rng.randint(0, 4))
        rng.shuffle(parts)
        texts.append(" ".join(parts))
    texts = [fold_turkish(t) if language == "tr" else t.lower() for t in texts]
    found = 0
    for text in texts:
        expected = [(match.start(), match.lastgroup) for match in reference.finditer(text)]
        assert matcher.find(text) == expected, text
        found += len(expected)
    assert found > 1500  # the texts do hold cues: the comparison means something


def test_necessary_words_of_a_pattern() -> None:
    none = frozenset()
    assert necessary_words(r"\w+ please") == (frozenset({"please"}), none, none)
    # A word glued to an unknown stretch is no whole word, but a text holding a match has a word that
    # starts with it; a shorter one only says its text is there.
    assert necessary_words(r"cockroach\w*") == (none, frozenset({"cockroach"}), none)
    assert necessary_words(r"ab\w*") == (none, none, frozenset({"ab"}))
    # Lookarounds consume nothing: "solved" stays a whole word.
    assert necessary_words(r"(?<!not )solved") == (frozenset({"solved"}), none, none)
    # Without a final \b a cue's last word may be the start of a longer one.
    assert necessary_words(r"deliver", word_end=False) == (none, frozenset({"deliver"}), none)
    assert necessary_words(r"bed\b", word_end=False) == (frozenset({"bed"}), none, none)
    gate = necessary_words(r"(?:waiting|waited) (?:for )?(?:\d+|two) (?:hours?|days?)")
    assert gate is not None and all(any(word in way.split() for word in gate[0]) for way in (
        "waiting for 3 hours", "waited two day", "waiting 3 days", "waited 2 hour"
    ))
    assert necessary_words(r"\w+") is None


def test_topic_tagger_finds_what_one_alternation_finds() -> None:
    # Topic cues match word starts ("deliver" in "delivery"): the matcher without the final \b.
    rng = random.Random(7)
    for language in ("en", "tr"):
        cues = [(str(i), fold_turkish(cue) if language == "tr" else cue)
                for i, topic in enumerate(DEFAULT_TOPICS.values()) for cue in topic.get(language, [])]
        groups = {k: "|".join(c for key, c in cues if key == k) for k, _ in cues}
        reference = re.compile(r"\b(?:" + "|".join(f"(?P<t{k}>{c})" for k, c in groups.items()) + ")")
        matcher = CueMatcher(cues, word_end=False)
        pieces = [text for _, cue in cues for text in samples(cue, rng, 3)]
        for _ in range(2000):
            words = rng.choices(pieces, k=rng.randint(1, 4)) + rng.choices(["s", "ing", "the", ","], k=2)
            text = "".join(word + rng.choice(["", " ", " "]) for word in words)
            expected = [(m.start(), m.lastgroup[1:]) for m in reference.finditer(text)]
            assert matcher.find(text) == expected, text


def test_patterns_without_a_known_word_always_run() -> None:
    matcher = CueMatcher([("a", r"\w+ly"), ("b", r"please")])
    assert matcher.find("quickly please") == [(0, "a"), (8, "b")]
    assert matcher.find("nothing here") == []
