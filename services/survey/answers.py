"""Reading the answers people really write to the NPS question, in English and Turkish; no I/O.

"9", "I'd say 8", "10/10", "9!!", "9/10 loved it", "eight", "sekiz", "on numara", "great staff, 9": a score
and maybe a comment. "eleven", "7-8", "8.5", "5 stars", "😀", "great staff": no score, and why, so the
customer can be asked once, helpfully. Numerals are ASCII digits only: ``str.isdigit()`` also accepts
superscripts and other scripts' digits ("²", "٩"), which nobody means as a score.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from shared.locales import localized
from shared.sms import fewest_segments, gsm7_spelling


class Reading(StrEnum):
    """What a reply was read as."""

    SCORE = "score"  # a score, maybe with a comment
    COMMENT = "comment"  # words (or emoji) without any number: a comment, the score still missing
    OUT_OF_RANGE = "out_of_range"  # a number, but not 0 to 10: "eleven", "11", "100"
    AMBIGUOUS = "ambiguous"  # a number that is not one score: "7-8", "8.5", "5 stars"
    EMPTY = "empty"  # nothing but spaces and punctuation


@dataclass(frozen=True)
class ReadAnswer:
    reading: Reading
    score: int | None = None
    # What the customer wrote beside the score (or instead of it), without the score's own words.
    comment: str | None = None

    @property
    def needs_a_score(self) -> bool:
        """True when the reply meant a score we could not take: worth asking again."""
        return self.reading in (Reading.OUT_OF_RANGE, Reading.AMBIGUOUS)


# Number words, folded (lower case, Turkish letters without their marks: SMS often drops them).
_WORD_SCORES = {
    "zero": 0, "nil": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "sifir": 0, "bir": 1, "iki": 2, "uc": 3, "dort": 4, "bes": 5, "alti": 6, "yedi": 7, "sekiz": 8,
    "dokuz": 9, "on": 10,
}  # fmt: skip
_WORDS_OUT_OF_RANGE = (
    r"eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty"
    r"|sixty|seventy|eighty|ninety|hundred|thousand|million|a\s+million|infinity|on\s+(?:bir|iki|uc|dort|bes"
    r"|alti|yedi|sekiz|dokuz)|yirmi|otuz|kirk|elli|altmis|yetmis|seksen|doksan|yuz|bin|milyon|sonsuz"
)
_NUMBER_WORD = (
    r"zero|nil|nought|one|two|three|four|five|six|seven|eight|nine|ten|sifir|bir|iki|uc|dort|bes"
    r"|alti|yedi|sekiz|dokuz|on"
)
_DIGITS = r"(?<![0-9.,])[0-9]+(?![0-9]|[.,][0-9])"
# "out of ten", "/10", "on 10" (tr: "10 üzerinden"); written after a score.
_OUT_OF_TEN = r"(?:\s*/\s*(?:10|ten)\b|\s+(?:out\s+of|of|from)\s+(?:10|ten)\b)"
# Words people put before a score: "I'd say 8", "I give you a 9", "score: 7", "puanım 8", "bence 9".
_LEAD_IN = (
    r"(?:(?:i'?d|i\s+would|i\s+will|i'?ll|i)\s+(?:say|give|rate|score)(?:\s+(?:you|it|us|this|them))?"
    r"(?:\s+(?:a|an))?|(?:my\s+)?(?:score|rating|answer|nps)(?:\s+(?:is|would\s+be))?\s*:?|maybe|probably"
    r"|about|around|solid|definitely|a|an|puan(?:im|imiz)?\s*:?|bence|notum|verdigim\s+puan)\s+"
)
# Words after a score that belong to it: "8 puan", "9 veriyorum", "9 from me".
_LEAD_OUT = r"(?:\s+(?:puan(?:im)?|veriyorum|veririm|verdim|from\s+me|for\s+sure))*"
_SEPARATORS = " \t\r\n,.;:!?-–—/()*'\"«»"

# "on numara" (ten out of ten: "top notch") is a score; "bir numara" (number one) is praise, not a 1.
_IDIOMS = ((re.compile(r"^on\s+numara(?:\s+bes\s+yildiz)?\b"), 10),)
_PRAISE_NOT_A_SCORE = re.compile(r"^bir\s+numara\b")

# Keycap digits ("9️⃣") carry an ASCII digit; "🔟" is ten.
_KEYCAP = re.compile(r"([0-9])\ufe0f?\u20e3")
_TURKISH_FOLD = str.maketrans("ıİIçÇğĞöÖşŞüÜâÂîÎûÛ’‘`", "iiiccggoossuuaaiiuu'''")


def _fold(text: str) -> str:
    """Lower case without Turkish marks, the same length as ``text`` so positions carry over."""
    return "".join(
        char.translate(_TURKISH_FOLD).lower() if len(char.translate(_TURKISH_FOLD).lower()) == 1 else char
        for char in text
    )


def _clean(text: str) -> str | None:
    cleaned = text.strip(_SEPARATORS).strip()
    return cleaned or None


def _has_content(text: str) -> bool:
    """Letters, digits or symbols (emoji): anything beyond spaces and punctuation."""
    return any(unicodedata.category(char)[0] in "LNS" for char in text)


def _word(text: str) -> str:
    return rf"(?:{text})(?![a-z0-9])"


_SCORE_TOKEN = rf"(?P<digits>{_DIGITS})|(?P<word>\b{_word(_NUMBER_WORD)})"
_TOO_BIG_TOKEN = rf"\b{_word(_WORDS_OUT_OF_RANGE)}"
# Two scores, half a score, or stars out of five: the customer is asked for one score from 0 to 10.
_AMBIGUOUS_START = re.compile(rf"^(?:{_LEAD_IN})*[0-9]+[.,][0-9]+")
_NEGATIVE = re.compile(r"^[-−]\s*[0-9]")
_AMBIGUOUS_ANYWHERE = re.compile(
    rf"(?<![0-9])(?:[0-9]|10)\s*(?:-|–|to|or|and|ya\s+da|veya|yada|ile)\s*(?:[0-9]|10)(?![0-9])"
    rf"|\b(?:{_NUMBER_WORD})\s+(?:or|to|and|ya\s+da|veya)\s+(?:{_NUMBER_WORD})(?![a-z])"
    rf"|(?<![0-9])[0-9]+\s*(?:stars?\b|yildiz|⭐)"
)
# A score at the start, after optional lead-in words: "9 great staff", "I'd say 8", "eight, lovely".
_LEADING = re.compile(rf"^(?:{_LEAD_IN})*(?:{_SCORE_TOKEN})(?P<ten>{_OUT_OF_TEN})?{_LEAD_OUT}")
# "10 üzerinden 9" (9 out of 10, Turkish word order).
_TURKISH_OUT_OF_TEN = re.compile(rf"^(?:10|on)\s+uzerinden\s+(?:{_SCORE_TOKEN})")
# A score with "out of ten" anywhere: "loved it, 9/10".
_ANYWHERE_OUT_OF_TEN = re.compile(rf"(?:{_SCORE_TOKEN}){_OUT_OF_TEN}")
# A rating phrase anywhere: "great staff, I'd give you a 9".
_RATING_PHRASE = re.compile(
    rf"(?:(?:i'?d|i\s+would|i'?ll|i)\s+(?:give|rate)(?:\s+(?:you|it|us|this|them))?(?:\s+(?:a|an))?"
    rf"|(?:score|rating|puan(?:im)?)\s*:?)\s+(?:{_SCORE_TOKEN}){_LEAD_OUT}"
)
# A bare number closing the message: "great staff, 9", "harika 10!".
_TRAILING = re.compile(rf"(?:^|[\s,.;:!-])(?P<digits>{_DIGITS})(?:{_OUT_OF_TEN})?{_LEAD_OUT}[\s.!]*$")
_ANY_NUMBER = re.compile(rf"{_DIGITS}|{_TOO_BIG_TOKEN}")
_WHOLE_WORD = re.compile(rf"^(?:{_LEAD_IN})*(?:{_SCORE_TOKEN}){_LEAD_OUT}$")


def read_answer(body: str) -> ReadAnswer:
    """What a customer's reply to the NPS question says: a score from 0 to 10, a comment, or why neither."""
    text = _KEYCAP.sub(r"\1", body.replace("\U0001f51f", "10")).strip()
    if not _has_content(text):
        return ReadAnswer(Reading.EMPTY)
    folded = _fold(text)
    core = folded.strip(_SEPARATORS)
    offset = len(folded) - len(folded.lstrip(_SEPARATORS))

    for idiom, score in _IDIOMS:
        match = idiom.match(core)
        if match:
            return _scored(score, text, offset + match.start(), offset + match.end())
    if _PRAISE_NOT_A_SCORE.match(core):
        return ReadAnswer(Reading.COMMENT, comment=text)
    if _NEGATIVE.match(folded.strip()):
        return ReadAnswer(Reading.OUT_OF_RANGE)
    if _AMBIGUOUS_START.match(core) or _AMBIGUOUS_ANYWHERE.search(core):
        return ReadAnswer(Reading.AMBIGUOUS, comment=_clean(text))
    if re.match(rf"^(?:{_LEAD_IN})*{_TOO_BIG_TOKEN}", core):
        return ReadAnswer(Reading.OUT_OF_RANGE, comment=_clean(text))

    match = _TURKISH_OUT_OF_TEN.match(core)
    if match:
        return _from_match(match, text, offset)
    match = _LEADING.match(core)
    if match and _takes_as_score(match, core):
        return _from_match(match, text, offset)
    for pattern in (_ANYWHERE_OUT_OF_TEN, _RATING_PHRASE, _TRAILING):
        match = pattern.search(core)
        if match:
            return _from_match(match, text, offset)
    if _ANY_NUMBER.search(core) and not _has_words_beyond_numbers(core):
        return ReadAnswer(Reading.OUT_OF_RANGE, comment=None)
    return ReadAnswer(Reading.COMMENT, comment=text)


def _takes_as_score(match: re.Match[str], core: str) -> bool:
    """A leading number word is a score only when it stands alone or a separator follows it.

    "One of the best shops" starts with "one" and is no score; "eight, lovely staff" is an 8. Digits lead
    a score whatever follows ("3 the agent was rude"): people answering 0 to 10 put the number first.
    """
    if match.group("digits") is not None or match.groupdict().get("ten"):
        return True
    rest = core[match.end() :]
    return not rest or rest[0] in ",.;:!?-–—/)" or bool(_WHOLE_WORD.match(core))


def _has_words_beyond_numbers(core: str) -> bool:
    return any(char.isalpha() for char in _ANY_NUMBER.sub("", core))


def _from_match(match: re.Match[str], text: str, offset: int) -> ReadAnswer:
    digits = match.group("digits")
    if digits is not None:
        # "000000009" is a 9; a run longer than that is no score (and int() refuses 4,300 digits and more).
        value = int(digits) if len(digits) <= 10 else 11
    else:
        value = _WORD_SCORES[match.group("word")]
    if not 0 <= value <= 10:
        return ReadAnswer(
            Reading.OUT_OF_RANGE, comment=_without(text, offset + match.start(), offset + match.end())
        )
    return _scored(value, text, offset + match.start(), offset + match.end())


def _scored(score: int, text: str, start: int, end: int) -> ReadAnswer:
    return ReadAnswer(Reading.SCORE, score, _without(text, start, end))


def _without(text: str, start: int, end: int) -> str | None:
    """The comment: the reply without the score's words, joined where they were cut out."""
    before, after = _clean(text[:start]), _clean(text[end:])
    comment = " ".join(part for part in (before, after) if part)
    return comment if comment and _has_content(comment) else None


# --- Asking again, once -------------------------------------------------------------------------

_REPROMPTS = {
    "en": {
        "comment": "Thanks for your message! One more thing: how likely are you to recommend {brand}, "
        "from 0 (not at all) to 10 (extremely)? Just reply with the number.",
        "number": "Sorry, we could not read a score. Please reply with one whole number from 0 "
        "(not at all likely) to 10 (extremely likely), e.g. 8.",
    },
    "tr": {
        "comment": "Mesajınız için teşekkürler! {brand} markasını tavsiye etme olasılığınız 0 (hiç) ile "
        "10 (çok) arasında kaç? Yalnızca sayıyla yanıtlayın.",
        "number": "Üzgünüz, puanı okuyamadık. Lütfen 0 (hiç olası değil) ile 10 (çok olası) arasında tek "
        "bir tam sayıyla yanıtlayın, örneğin 8.",
    },
}


def reprompt_text(answer: ReadAnswer, locale: str, brand: str) -> str:
    """The one message asking again: for the score a comment came without, or for a readable one."""
    texts = localized(_REPROMPTS, locale)
    text = texts["comment"].format(brand=brand) if answer.reading == Reading.COMMENT else texts["number"]
    # Our own words may lose their Turkish marks when that saves a segment; the brand is kept as written.
    respelled = (
        brand.join(gsm7_spelling(part) for part in text.split(brand)) if brand else gsm7_spelling(text)
    )
    return fewest_segments([text, respelled])
