"""Word-level helpers shared by keyword retrieval and answer composition."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import Stemmer

WORDS = re.compile(r"[\w'’]+")
# Passages a keyword query may make BM25 score: bounds its cost on large corpora (docs/benchmarks.md,
# section 10); a corpus of a few thousand passages never reaches it.
KEYWORD_BUDGET = 50_000
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    do does did has have had it its this that these those there their they them he him his she her
    we our you your i me my what which who whom whose when where why how not no so than then too
    very can could will would shall should may might must about into over after before under
    again further once all any both each few more most other some such only own same just also
    s t don now up down out off""".split()
)


def plain(word: str) -> str:
    """`word` lowercased, a typographic apostrophe read as a plain one, without quotes around it.

    So "Russia’s" (news copy) and "Russia's" meet, and the stemmer drops the possessive of both.
    """
    return word.lower().replace("’", "'").strip("'")


def content_words(text: str) -> set[str]:
    """Lowercased words of `text` that carry meaning (stop words dropped), each as `plain` gives it."""
    words = {plain(w) for w in WORDS.findall(text)}
    return words - STOPWORDS - {""}


_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


@lru_cache(maxsize=65536)
def stems(text: str) -> frozenset[str]:
    """Snowball stems of the content words of `text`: "previous" and "previously" meet.

    Cached: the same passages come back question after question, and their text never changes.
    """
    return stem_words(content_words(text))


def stem_words(words: Iterable[str]) -> frozenset[str]:
    """Snowball stems of words already split and lowercased (`content_words`)."""
    return frozenset(_stem(w) for w in words)


def keyword_query(
    text: str,
    frequencies: Callable[[list[str]], dict[str, int]] | None = None,
    budget: int = KEYWORD_BUDGET,
) -> str | None:
    """An SQLite FTS5 query matching any content word of `text`, or None when it has none."""
    return terms_query(content_words(text), frequencies, budget)


def terms_query(
    terms: Iterable[str],
    frequencies: Callable[[list[str]], dict[str, int]] | None = None,
    budget: int = KEYWORD_BUDGET,
) -> str | None:
    """An SQLite FTS5 query matching any of `terms` (content words), or None when there are none.

    Each word is quoted, so nothing in a question can be read as FTS5 syntax. BM25 scores every
    passage that holds any word, so on a large corpus common words cost far more than they tell:
    given the words' passage counts (`frequencies`), the rarest are kept while their passages add
    up to at most `budget` (always at least the rarest one). Corpora too small to reach the budget
    never look the counts up and get every word.
    """
    words = sorted(w.replace('"', "") for w in terms)
    words = [w for w in words if w]
    if frequencies is not None and words:
        counts = frequencies(words)
        if sum(counts.values()) > budget:
            kept: list[str] = []
            total = 0
            for word in sorted(words, key=lambda w: (counts[w], w)):
                if kept and total + counts[word] > budget:
                    break
                kept.append(word)
                total += counts[word]
            words = sorted(kept)
    return " OR ".join(f'"{w}"' for w in words) or None


_PORTER = Stemmer.Stemmer("porter")


def fts_term(word: str) -> str:
    """`word` as SQLite FTS5's `porter unicode61` tokenizer indexes it (the original Porter stemmer)."""
    return str(_PORTER.stemWord(word.lower()))
