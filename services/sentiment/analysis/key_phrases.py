"""Key phrases: what a comment is about ("delivery", "refund", "support agent"), for the success team.

A fast tokenizer and word lists, no corpus download: a phrase is a run of up to three words inside one
clause that are neither function words, nor topic-free verbs and fillers, nor sentiment words (the
label already says "terrible"), nor numbers. Phrases are ranked by how often they occur, then by
where they first appear. YAKE gave similar phrases on customer comments at a fraction of the speed.
"""

from __future__ import annotations

import re
from functools import cache

from services.sentiment.analysis.language import ENGLISH, TOKEN_RE, TURKISH, tokenize
from services.sentiment.analysis.stopwords import (
    ENGLISH_NON_TOPIC_WORDS,
    ENGLISH_STOPWORDS,
    TURKISH_NON_TOPIC_WORDS,
    TURKISH_STOPWORDS,
)
from services.sentiment.analysis.turkish import fold_turkish
from services.sentiment.analysis.turkish_lexicon import TURKISH_INTENSIFIERS, TURKISH_VALENCES

MAX_PHRASES = 5
MAX_PHRASE_WORDS = 3
_ENGLISH_SENTIMENT_VALENCE = 1.0  # |VADER valence| from which a word is opinion, not topic

# Finite Turkish verbs (past -dı after a consonant or -tı/-dı after a consonant, -yor, -mış, -acak,
# infinitives): "geldi", "bekliyorum", "yapmışlar". A noun with a possessive ("fiyatı") is spared.
_TURKISH_VERB_RE = re.compile(
    r"(?:[^aeiou][dt][iu]|[aeiou]d[iu])(?:m|n|k|niz|nuz|ler|lar|m[iu]z)?$"
    r"|[iu]?yor(?:um|uz|sun|lar|du|dum)?$|m[iu]s(?:tim|tik|lar|tir)?$|[ae]c[ae]k(?:tim|lar)?$|m[ae][kmz]$|[iu]p$"
)
_MIN_TURKISH_VERB_LENGTH = 5


@cache
def _english_excluded() -> frozenset[str]:
    from services.sentiment.analysis.english import CUSTOMER_SERVICE_VALENCES, _pattern_sentiment, _vader

    lexicon = _vader(True).lexicon
    opinion = {word for word, valence in lexicon.items() if abs(valence) >= _ENGLISH_SENTIMENT_VALENCE}
    # TextBlob's lexicon is adjectives and adverbs: opinion or degree, never the topic.
    opinion |= {word for word in dict.keys(_pattern_sentiment()) if word.isalpha()}
    opinion -= {word for word, valence in CUSTOMER_SERVICE_VALENCES.items() if valence == 0.0}
    return frozenset(opinion | ENGLISH_STOPWORDS | ENGLISH_NON_TOPIC_WORDS)


@cache
def _turkish_excluded_stems() -> tuple[frozenset[str], int]:
    stems = {fold_turkish(stem) for stem, value in TURKISH_VALENCES.items() if value and " " not in stem}
    stems |= {fold_turkish(word) for word in TURKISH_INTENSIFIERS if " " not in word}
    return frozenset(stems), max(map(len, stems))


def _is_turkish_topic(word: str) -> bool:
    if word in TURKISH_STOPWORDS or word in TURKISH_NON_TOPIC_WORDS:
        return False
    folded = fold_turkish(word)
    if len(folded) >= _MIN_TURKISH_VERB_LENGTH and _TURKISH_VERB_RE.search(folded):
        return False
    stems, longest = _turkish_excluded_stems()
    return not any(folded[:end] in stems for end in range(min(len(folded), longest), 1, -1))


def extract_key_phrases(
    text: str, language: str, limit: int = MAX_PHRASES, tokens: list[str] | None = None
) -> list[str]:
    """Up to `limit` topic phrases of an English or Turkish comment, most frequent first; [] otherwise.
    `tokens` (from `language.tokenize`) saves tokenizing English text again."""
    if language == ENGLISH:
        if tokens is None:
            tokens = tokenize(text)
        excluded = _english_excluded()

        def is_topic(word: str) -> bool:
            return word not in excluded
    elif language == TURKISH:
        is_topic = _is_turkish_topic
        # Turkish lower case: "I" is "ı" ("ISLAK" → "ıslak"), which the shared tokens cannot know.
        tokens = TOKEN_RE.findall(text.replace("I", "ı").replace("İ", "i").lower().replace("’", "'"))
    else:
        return []
    runs: list[list[str]] = [[]]
    current = runs[0]
    for token in tokens:
        word = token.split("'", 1)[0] if "'" in token else token
        if len(word) > 1 and word[0].isalpha() and is_topic(word):
            current.append(word)
        elif current:
            current = []
            runs.append(current)
    counts: dict[str, int] = {}
    for run in runs:
        for start in range(0, len(run), MAX_PHRASE_WORDS):
            phrase = " ".join(run[start : start + MAX_PHRASE_WORDS])
            if phrase:
                counts[phrase] = counts.get(phrase, 0) + 1
    # dicts keep first-seen order, and sorted() is stable: ties stay in order of appearance.
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)
    return ranked[:limit]
