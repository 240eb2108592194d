"""Many word-bounded regular expressions matched as one alternation, quickly: a word prefilter decides which
of them can match a text at all, and only those are run.

`CueMatcher([(kind, pattern), ...]).find(text)` returns what

    re.compile(r"\\b(?:(?P<kind1>p1|p2)|(?P<kind2>p3)...)\\b").finditer(text)

finds, as (start, kind) pairs, identically: at each position the first pattern (in order) that matches
there wins, and the scan resumes after it. With `word_end=False` there is no final \\b: cues that match
the start of a word, as the topics' "deliver" matches "delivery".

The alternation tries every pattern at every word boundary of every comment; most comments can match
none or one of them. For each pattern the matcher knows, from its parsed form, words of which any match
must contain one as a whole word (\\w+ token) — "please" for r"\\w+ please", the unit words for "waited
3 hours" — or else the start of a word ("deliver"), or else a literal it must contain; a pattern with none
of them is always run. A text's words then say which patterns are worth running.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from re import _constants as sre  # the parser's opcodes, stable across CPython 3.11+
from re import _parser as sre_parse

_WORD = re.compile(r"\w+")
_WILD = object()  # an unknown stretch of text in a pattern's skeleton
_EDGE = object()  # a word boundary (\b) inside a pattern: zero-width, closes a word
_MAX_SKELETONS = 5000  # patterns that expand to more are always run
_SMALL_CLASS = 4  # character classes of up to this many literal characters are expanded
_PREFIX = 3  # word starts are looked up by their first three letters; shorter ones gate nothing
_LONG_TEXT = 600  # characters from which the one alternation is run instead
_MANY_CANDIDATES = 8


class CueMatcher:
    def __init__(
        self, patterns: Sequence[tuple[str, str]], common: Collection[str] = (), word_end: bool = True
    ) -> None:
        """`patterns`: (kind, regular expression) in order; `common`: words found in most texts (function
        words), used to gate a pattern only when it has no rarer word to go by; `word_end`: whether a
        match must end a word (a final \\b)."""
        end = r"\b" if word_end else ""
        self._patterns = [(kind, re.compile(r"\b(?:" + pattern + ")" + end)) for kind, pattern in patterns]
        # The one alternation itself, for texts where the prefilter would save nothing (long, or with
        # many candidates): the loop below costs a little per match and candidate, it a little per word.
        runs: list[tuple[str, list[str]]] = []  # neighbouring patterns of one kind share a group
        for kind, pattern in patterns:
            if runs and runs[-1][0] == kind:
                runs[-1][1].append(pattern)
            else:
                runs.append((kind, [pattern]))
        self._kinds = {f"k{index}": kind for index, (kind, _) in enumerate(runs)}
        self._alternation = re.compile(
            r"\b(?:" + "|".join(f"(?P<k{index}>" + "|".join(run) + ")" for index, (_, run) in enumerate(runs))
            + ")" + end
        )
        self._by_word: dict[str, list[int]] = {}
        self._by_prefix: dict[str, list[tuple[str, int]]] = {}
        self._by_literal: list[tuple[str, int]] = []
        self._always: list[int] = []
        for index, (_, pattern) in enumerate(patterns):
            gate = necessary_words(pattern, common, word_end)
            if gate is None:
                self._always.append(index)
                continue
            words, prefixes, literals = gate
            for word in words:
                self._by_word.setdefault(word, []).append(index)
            for prefix in prefixes:
                self._by_prefix.setdefault(prefix[:_PREFIX], []).append((prefix, index))
            self._by_literal += [(literal, index) for literal in literals]

    def candidates(self, text: str) -> list[int]:
        """The patterns that may match `text`, in order."""
        found = set(self._always)
        words = set(_WORD.findall(text))
        for word in self._by_word.keys() & words:
            found.update(self._by_word[word])
        if self._by_prefix:
            for word in words:
                for prefix, index in self._by_prefix.get(word[:_PREFIX], ()):
                    if word.startswith(prefix):
                        found.add(index)
        found.update(index for literal, index in self._by_literal if literal in text)
        return sorted(found)

    def find(self, text: str) -> list[tuple[int, str]]:
        """(start, kind) of each match, as the one alternation's finditer gives them."""
        if len(text) > _LONG_TEXT:
            return self._find_all(text)
        candidates = self.candidates(text)
        if not candidates:
            return []
        if len(candidates) > _MANY_CANDIDATES:
            return self._find_all(text)
        found: list[tuple[int, str]] = []
        # Each candidate's next match from the current position; a pattern with none left is dropped.
        upcoming: dict[int, re.Match[str]] = {}
        for index in candidates:
            match = self._patterns[index][1].search(text)
            if match is not None:
                upcoming[index] = match
        while upcoming:
            # The leftmost match wins; at one start, the first pattern (dicts keep the candidates' order).
            index = min(upcoming, key=lambda i: upcoming[i].start())
            best = upcoming[index]
            found.append((best.start(), self._patterns[index][0]))
            position = best.end() if best.end() > best.start() else best.end() + 1
            for index, match in list(upcoming.items()):
                if match.start() < position:
                    again = self._patterns[index][1].search(text, position) if position <= len(text) else None
                    if again is None:
                        del upcoming[index]
                    else:
                        upcoming[index] = again
        return found

    def _find_all(self, text: str) -> list[tuple[int, str]]:
        matches = self._alternation.finditer(text)
        return [(match.start(), self._kinds[match.lastgroup or ""]) for match in matches]


Gate = tuple[frozenset[str], frozenset[str], frozenset[str]]


def necessary_words(pattern: str, common: Collection[str] = (), word_end: bool = True) -> Gate | None:
    r"""(words, prefixes, literals) for a pattern matched as r"\b(?:pattern)\b" (no final \b unless
    `word_end`): any match contains one of the words as a whole \w+ token, or a token that starts with
    one of the prefixes, or one of the literals; None when no such gate is known. The words are chosen to
    be few and rare: a greedy cover of the pattern's ways through, where a common or one- or two-letter
    word costs as much as twenty others."""
    skeletons = _expand(sre_parse.parse(pattern))
    if skeletons is None:
        return None
    prefixes: set[str] = set()
    literals: set[str] = set()
    uncovered: list[set[str]] = []
    for skeleton in skeletons:
        whole, starts, chunks = _words_of(skeleton if word_end else (*skeleton, _WILD))
        if whole:
            uncovered.append(whole)
        elif starts:
            prefixes.add(max(starts, key=lambda word: (len(word), word)))
        elif chunks:
            literals.add(max(chunks, key=len))
        else:
            return None

    def cost(word: str) -> int:
        return 20 if word in common or len(word) <= 2 else 1

    words: set[str] = set()
    while uncovered:
        counts: dict[str, int] = {}
        for whole in uncovered:
            for word in whole:
                counts[word] = counts.get(word, 0) + 1
        chosen = max(counts, key=lambda word: (counts[word] / cost(word), len(word), word))
        words.add(chosen)
        uncovered = [whole for whole in uncovered if chosen not in whole]
    return frozenset(words), frozenset(prefixes), frozenset(literals)


def _expand(items: sre_parse.SubPattern | list) -> list[tuple] | None:
    """The skeletons of a parsed sequence: every way through it, literal text and _WILD/_EDGE marks."""
    out: list[tuple] = [()]
    for op, av in items:
        ways: list[tuple] | None
        if op is sre.LITERAL:
            ways = [(chr(av),)]
        elif op is sre.SUBPATTERN:
            ways = _expand(av[3])
        elif op is sre.BRANCH:
            ways = []
            for branch in av[1]:
                sub = _expand(branch)
                if sub is None:
                    ways = None
                    break
                ways += sub
        elif op is sre.IN and len(av) <= _SMALL_CLASS and all(kind is sre.LITERAL for kind, _ in av):
            ways = [(chr(value),) for _, value in av]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[1] == 1:
            sub = _expand(av[2])
            ways = None if sub is None else ([()] if av[0] == 0 else []) + sub
        elif op is sre.AT and av is sre.AT_BOUNDARY:
            ways = [(_EDGE,)]
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            ways = [()]  # zero-width: the text on either side of a lookaround is consumed side by side
        else:
            ways = None
        out = [done + way for done in out for way in (ways if ways is not None else [(_WILD,)])]
        if len(out) > _MAX_SKELETONS:
            return None
    return out


def _words_of(skeleton: tuple) -> tuple[set[str], set[str], list[str]]:
    """A skeleton's whole words (word runs with a non-word character, \\b or the pattern's own edge on
    both sides; the pattern is matched after a \\b), the starts of words (closed on the left only, at
    least _PREFIX long) and its literal chunks."""
    chunks: list[object] = []
    text = ""
    for piece in skeleton:
        if isinstance(piece, str):
            text += piece
        else:
            chunks += [text, piece]
            text = ""
    chunks.append(text)
    whole: set[str] = set()
    starts: set[str] = set()
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, str) or not chunk:
            continue
        open_left = i > 0 and chunks[i - 1] is _WILD
        open_right = i + 1 < len(chunks) and chunks[i + 1] is _WILD
        for word in _WORD.finditer(chunk):
            if word.start() == 0 and open_left:
                continue
            if word.end() == len(chunk) and open_right:
                if len(word.group()) >= _PREFIX:
                    starts.add(word.group())
                continue
            whole.add(word.group())
    return whole, starts, [chunk for chunk in chunks if isinstance(chunk, str) and chunk]
