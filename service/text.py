"""Word-level helpers shared by keyword retrieval and answer composition."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

WORDS = re.compile(r"[\w'’]+")
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


def keyword_query(text: str) -> tuple[str, ...]:
    """The keyword query of `text`: its content words, sorted; empty when it has none."""
    return keyword_terms(content_words(text))


def keyword_terms(terms: Iterable[str]) -> tuple[str, ...]:
    """A keyword query from words already split (`content_words`): each once, sorted, none empty.

    Passages holding any of them are ranked by BM25 (`store.Index.keyword_search`, which stems them
    as the index does). Every word is kept: Tantivy's pruned top-k search costs about a millisecond
    at a million passages with all of them, where FTS5 needed a budget of the rarest words
    (docs/benchmarks.md, section 10).
    """
    return tuple(sorted({w for w in terms if w}))


_PORTER = Stemmer.Stemmer("porter")
_ALPHANUMERIC = re.compile(r"[^\W_]+")
_LONGEST_TOKEN = 255  # longer runs (never words) are left out of the keyword index


def keyword_tokens(text: str) -> list[str]:
    """`text` as the keyword index holds it: runs of letters and digits, lowercased, without
    diacritics, stemmed by the original Porter stemmer.

    This is what SQLite FTS5's `porter unicode61` tokenizer made of it, kept when keyword search
    moved to Tantivy because retrieval's weights were tuned on it: Tantivy's own English stemmer
    (Porter2) also joins "added" with "add", enough to change which passage comes first on the
    project's own questions. Passages and query words both go through here, so they always meet.
    """
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    words = [w for w in _ALPHANUMERIC.findall(text.lower()) if len(w) <= _LONGEST_TOKEN]
    stem = _PORTER.stemWord
    return [str(stem(w)) if 3 <= len(w) <= 64 else w for w in words]  # as FTS5: the others unstemmed
