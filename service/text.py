"""Word-level helpers shared by keyword retrieval and answer composition."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer
from spellchecker import SpellChecker

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


_MONTHS = "January February March April May June July August September October November December".split()


@lru_cache(maxsize=4096)
def date_stems(published: str | None) -> frozenset[str]:
    """The stems of an article's date as a question would name it: month, year and day ("July 2022").

    A news passage says "on Friday"; the article's date says which Friday. So a question that names
    the month or the year finds it in every passage of the article, as a reader of the article would.
    Empty for an undated article or a date not written `YYYY-MM-DD`.
    """
    if not published or len(published) < 10 or published[4] != "-" or published[7] != "-":
        return frozenset()
    year, month, day = published[:4], published[5:7], published[8:10]
    if not (year.isdigit() and month.isdigit() and day.isdigit() and 1 <= int(month) <= 12):
        return frozenset()
    return stems(f"{_MONTHS[int(month) - 1]} {year} {int(day)}")


# Words by which a news sentence dates what it reports to the article's own day or week ("On Friday").
_RELATIVE_DAY = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tonight|"
    r"(this|last) week)\b",
    re.I,
)


def said_on(sentence: str, published: str | None) -> frozenset[str]:
    """The stems of the date a sentence speaks of without writing it: the article's, when the sentence
    dates what it reports by the day ("On Friday", "yesterday"); empty otherwise."""
    if not published or not _RELATIVE_DAY.search(sentence):
        return frozenset()
    return date_stems(published)


def names_a_date(words: Iterable[str]) -> bool:
    """Whether stems of a question hold a month or a plausible year: only then can a date be evidence."""
    return any(w in _MONTH_STEMS or (len(w) == 4 and w.isdigit() and "1500" <= w <= "2199") for w in words)


@lru_cache(maxsize=1)
def _english() -> SpellChecker:
    return SpellChecker(language="en", distance=1)


def english_word(word: str) -> bool:
    """Whether `word` is a word of English (pyspellchecker's list of 160,000 words and forms).

    "lender", "westerly" and "restated" are words in their own right, not other spellings of the
    "leader", "western" and "related" a corpus holds; "Krikalyov" and "goverment" are not. The list
    is read on first use (0.2 s, about 40 MB), only when a question has a word no passage holds.
    """
    return word.lower() in _english()


def within_edits(a: str, b: str, limit: int) -> int | None:
    """The edit distance between `a` and `b` (insertions, deletions, substitutions) if it is at most
    `limit`, else None: only the diagonal band the limit allows is computed, and it stops early."""
    if abs(len(a) - len(b)) > limit:
        return None
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i] + [limit + 1] * len(b)
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != b[j - 1]))
        if min(current) > limit:
            return None
        previous = current
    return previous[-1] if previous[-1] <= limit else None


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


_MONTH_STEMS = stem_words(m.lower() for m in _MONTHS)
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
