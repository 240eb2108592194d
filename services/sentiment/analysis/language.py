"""Which language a comment is in, as far as the sentiment service needs to know.

The rule (`detect_language`):
1. Words are runs of letters; digits, emoji and punctuation are no evidence.
2. Each word that is a known function or feedback word of a language is one point for it, split
   evenly when several languages share it ("de", "no"). A word with letters only some languages use
   counts too: ğ, ı, ş for Turkish; ß, ä for German; ñ for Spanish; ã, õ for Portuguese; ç, ö, ü and
   accented vowels are shared out between the languages that use them. Words that travel between
   languages ("ok", "super", "wow", "app") count for none.
3. Only when that leaves English and Turkish without two points between them are the remaining words
   looked up in VADER's and TextBlob's English lexicons ("pleasant", "boring") and among Turkish
   lexicon stems ("harika", "memnuniyet", "tesekkurler"): one point each. This lets one-word comments
   through. (Reading stops early once four English-only words and nothing else have been seen.)
4. Less than one point in all: "unknown" ("ok", "👍", "123", "asdf"). Otherwise the language with the
   most points wins; a tie is "unknown". English and Turkish are returned as "en" and "tr"; a win by
   any other language (German, Spanish, French, Italian, Portuguese, Dutch) is "unsupported", so
   such a comment is never given an English score.
A one-word English comment ("great!", "terrible") has its point from the feedback-word list and is "en".
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache

from services.sentiment.analysis.stopwords import (
    ENGLISH_STOPWORDS,
    OTHER_LANGUAGE_WORDS,
    TURKISH_STOPWORDS,
    word_set,
)
from services.sentiment.analysis.turkish import fold_turkish
from services.sentiment.analysis.turkish_lexicon import TURKISH_VALENCES

ENGLISH, TURKISH, UNKNOWN, UNSUPPORTED = "en", "tr", "unknown", "unsupported"

# Words (with an apostrophe suffix: "don't", "Trendyol'dan"), single punctuation marks, numbers.
TOKEN_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[^\w\s]|\d+")

# Words that say "this is English feedback" though they are not function words.
ENGLISH_FEEDBACK_WORDS: frozenset[str] = word_set(
    """
    good great bad terrible awful excellent amazing awesome love loved lovely hate hated fast slow late
    quick quickly helpful unhelpful rude friendly perfect horrible nice fine poor worst best better worse
    easy difficult hard disappointed disappointing happy unhappy satisfied recommend recommended cheap
    expensive thank thanks fantastic wonderful brilliant useless broken damaged missing wrong outstanding
    superb polite professional smooth delivery delivered shipping shipped refund refunded order ordered
    product products package parcel price prices customer staff agent agents experience quality
    everything nothing support helpline waiting waited never always again problem issue issues
    works working worked useful easy simple fixed solved resolved answer answered reply replied called
    people guy lady team company store shop website received arrived cancelled canceled charged
    bill billing account money payment item items service
    """
)
TURKISH_FEEDBACK_WORDS: frozenset[str] = word_set(
    """
    kargo ürün ürünü sipariş siparişim teslimat teslim müşteri hizmet hizmetleri iade fiyat paket kurye
    mağaza personel çalışan uygulama fatura ödeme geldi gelmedi tamam teşekkürler teşekkür ederim
    kargocu satıcı firma şirket destek hattı temsilci para ücret sipariş geç süper idare eder
    hâlâ hala henüz bekliyorum bekledim aradım aramadı arayan olmadı kimse iade edilmedi ulaşmadı
    ulaşamadım çözülmedi düzelmedi çalışmıyor kargom siparişim paketim faturam param hesabım kartım
    teslimat kurye oda otel personel kahvaltı uygulama güncelleme fatura
    """
)
# Shared across languages: no evidence for any of them.
INTERNATIONAL_WORDS: frozenset[str] = word_set(
    "ok okay oke okey k super top wow app online web email mail bravo lol hmm ah oh hi hey yo"
)

_CHAR_EVIDENCE: dict[str, tuple[str, ...]] = {
    "ğ": ("tr",),
    "ı": ("tr",),
    "ş": ("tr",),
    "ß": ("de",),
    "ä": ("de",),
    "ñ": ("es",),
    "ã": ("pt",),
    "õ": ("pt",),
    "ç": ("tr", "fr", "pt"),
    "ö": ("tr", "de"),
    "ü": ("tr", "de"),
    "é": ("fr", "es", "pt", "it"),
    "è": ("fr", "it"),
    "ê": ("fr", "pt"),
    "à": ("fr", "it", "pt"),
    "â": ("fr", "pt"),
    "ô": ("fr", "pt"),
    "û": ("fr",),
    "î": ("fr",),
    "œ": ("fr",),
    "á": ("es", "pt"),
    "í": ("es", "pt"),
    "ó": ("es", "pt"),
    "ú": ("es", "pt"),
    "ì": ("it",),
    "ò": ("it",),
    "ù": ("it",),
}
_MIN_STEM_EVIDENCE_LENGTH = 4
_ENGLISH_ONLY = ((ENGLISH, 1.0),)
# Once this many English-only words and no other language's have been seen, the rest cannot change
# the answer enough to matter, so detection stops reading.
_DECISIVE_WORDS = 4


@cache
def _word_evidence() -> dict[str, tuple[tuple[str, float], ...]]:
    """word -> ((language, share), ...), the shares of a word summing to one point."""
    languages: dict[str, set[str]] = defaultdict(set)
    for word in ENGLISH_STOPWORDS | ENGLISH_FEEDBACK_WORDS:
        languages[word].add(ENGLISH)
    english = set(languages)
    for word in TURKISH_STOPWORDS | TURKISH_FEEDBACK_WORDS:
        languages[word].add(TURKISH)
        folded = fold_turkish(word)
        # Turkish typed without Turkish letters ("cok", "icin"), unless that spells an English word.
        if folded not in english:
            languages[folded].add(TURKISH)
    for language, words in OTHER_LANGUAGE_WORDS.items():
        for word in words:
            languages[word].add(language)
    return {
        word: _ENGLISH_ONLY
        if found == {ENGLISH}
        else tuple((language, 1.0 / len(found)) for language in sorted(found))
        for word, found in languages.items()
        if word not in INTERNATIONAL_WORDS
    }


@cache
def _turkish_stems() -> frozenset[str]:
    english = ENGLISH_STOPWORDS | ENGLISH_FEEDBACK_WORDS
    stems = set()
    for key, value in TURKISH_VALENCES.items():
        stem = fold_turkish(key)
        usable = value and " " not in stem and len(stem) >= _MIN_STEM_EVIDENCE_LENGTH
        # Stems that begin English words ("problem", "ideal") are no evidence.
        if usable and not any(word.startswith(stem) for word in english) and stem not in INTERNATIONAL_WORDS:
            stems.add(stem)
    return frozenset(stems) - {"problem", "ideal", "favori", "pratik", "profesyonel", "skandal"}


# Endings of Turkish verbs that English words do not have: negated past and present ("gelmedi",
# "ulasmadim", "calismiyor"), the present continuous ("bekliyorum"), "-siniz", "-imiz". With no Turkish
# letters ("siparisim hala gelmedi") they are what is left to tell Turkish by.
_TURKISH_ENDING = re.compile(
    r"(?:m[ae]d[iu]\w{0,5}|m[iu]yor\w{0,4}|[iu]yor(?:um|uz|sun|lar|du|dum)?|s[iu]n[iu]z|[iu]m[iu]z"
    r"|[ae]bil[iu]r\w{0,4}|[iu]l[ae]bil\w*|[iu]n[ae]bil\w*)$"
)


def _looks_turkish(word: str) -> bool:
    folded = fold_turkish(word)
    stems = _turkish_stems()
    if len(folded) >= 5 and _TURKISH_ENDING.search(folded):
        return True
    return any(folded[:end] in stems for end in range(len(folded), _MIN_STEM_EVIDENCE_LENGTH - 1, -1))


def language_evidence(tokens: list[str]) -> dict[str, float]:
    """Points per language for the tokens of `tokenize` (see the module docstring)."""
    evidence: dict[str, float] = {}
    table = _word_evidence()
    unmatched = []
    english_only = 0  # English-only words seen; enough of them settle it (most comments are English)
    for word in tokens:
        if not word[0].isalpha():
            continue
        shares = table.get(word)
        if shares is not None:
            if shares is _ENGLISH_ONLY:
                english_only += 1
                if english_only >= _DECISIVE_WORDS and len(evidence) == 1:
                    break
            for language, share in shares:
                evidence[language] = evidence.get(language, 0.0) + share
            continue
        if word in INTERNATIONAL_WORDS:
            continue
        if not word.isascii():
            for char in word:
                languages = _CHAR_EVIDENCE.get(char)
                if languages:
                    for language in languages:
                        evidence[language] = evidence.get(language, 0.0) + 1.0 / len(languages)
                    break
        unmatched.append(word)
    if unmatched and evidence.get(ENGLISH, 0.0) + evidence.get(TURKISH, 0.0) < 2:
        from services.sentiment.analysis.english import english_opinion_words

        opinion_words = english_opinion_words()
        for word in unmatched:
            if word in opinion_words:
                evidence[ENGLISH] = evidence.get(ENGLISH, 0.0) + 1.0
            elif _looks_turkish(word):
                evidence[TURKISH] = evidence.get(TURKISH, 0.0) + 1.0
    return evidence


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens, shared by language detection and English key phrases."""
    # Python lower-cases "İ" to "i" plus a combining dot; Turkish means plain "i".
    return TOKEN_RE.findall(text.replace("İ", "i").lower().replace("’", "'"))


def detect_language(text: str, tokens: list[str] | None = None, hint: str | None = None) -> str:
    """ "en", "tr", "unknown" (too little evidence) or "unsupported" (another language); the rule is
    in this module's docstring. `tokens` saves tokenizing again when the caller has them.

    `hint` ("en" or "tr": the survey's language) is taken unless the text clearly says otherwise: a
    comment is put in another language only when that language has points and the hint's has none,
    or at least twice the hint's points and two points in all (two for an unsupported language too,
    so a stray "no" or "de" does not unsettle a hint). Text with no evidence at all takes the hint.
    """
    evidence = language_evidence(tokenize(text) if tokens is None else tokens)
    if hint is not None:
        return _with_hint(evidence, hint)
    if not evidence:
        return UNKNOWN
    best = max(evidence, key=evidence.__getitem__)
    top = evidence[best]
    if top < 1.0 or sum(1 for points in evidence.values() if points == top) > 1:
        return UNKNOWN
    return best if best in (ENGLISH, TURKISH) else UNSUPPORTED


def _with_hint(evidence: dict[str, float], hint: str) -> str:
    hinted = evidence.get(hint, 0.0)
    others = {language: points for language, points in evidence.items() if language != hint}
    if not others:
        return hint
    best = max(others, key=others.__getitem__)
    top = others[best]
    supported = best in (ENGLISH, TURKISH)
    if supported and hinted == 0.0 and top >= 1.0:
        return best
    if top >= 2.0 and top >= 2.0 * hinted:
        return best if supported else UNSUPPORTED
    return hint
