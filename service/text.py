"""Word-level helpers shared by keyword retrieval and answer composition."""

from __future__ import annotations

import datetime as dt
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
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()


def _day(published: str | None) -> dt.date | None:
    """An article's `published` (ISO, as documents.iso_date writes it) as a date, else None."""
    try:
        return dt.date.fromisoformat(published[:10]) if published else None
    except ValueError:
        return None


def _named(day: dt.date, with_day: bool = True) -> frozenset[str]:
    """The stems of a date as a question names it: month and year, and the day of the month."""
    return stems(f"{_MONTHS[day.month - 1]} {day.year}" + (f" {day.day}" if with_day else ""))


@lru_cache(maxsize=4096)
def date_stems(published: str | None) -> frozenset[str]:
    """The stems of an article's date as a question would name it: month, year and day ("July 2022").

    A question that names the month or the year then finds it in every passage of the article, as
    a reader of the article would. Empty for an undated article. ("May" is a stop word, dropped from
    question and date alike: a May date matches on its year and day only.)
    """
    day = _day(published)
    return _named(day) if day else frozenset()


# Words by which a news sentence dates what it reports from the article's own day ("On Friday").
_RELATIVE_DAY = re.compile(rf"\b({'|'.join(_WEEKDAYS)}|yesterday|today|tonight|(this|last) week)\b", re.I)


def said_on(sentence: str, published: str | None) -> frozenset[str]:
    """The stems of the date a sentence speaks of without writing it, worked out from the article's.

    "On Friday" in a piece of Monday 1 August 2022 is 29 July 2022 (the last Friday on or before
    it), "yesterday" the day before, "this week" or "last week" only a month and year. Empty when
    the sentence dates nothing by the day, or the article is undated.
    """
    day = _day(published)
    found = _RELATIVE_DAY.search(sentence) if day else None
    if day is None or found is None:
        return frozenset()
    word = found.group(1).lower()
    if word in _WEEKDAYS:
        return _named(day - dt.timedelta(days=(day.weekday() - _WEEKDAYS.index(word)) % 7))
    if word == "yesterday":
        return _named(day - dt.timedelta(days=1))
    if word.endswith("week"):
        return _named(day - dt.timedelta(days=7 if word.startswith("last") else 0), with_day=False)
    return _named(day)


def names_a_date(words: Iterable[str]) -> bool:
    """Whether words as written name a month (capitalised: not "the march") or a plausible year; only
    then can an article's date be evidence for a question."""
    return any(w in _MONTHS or (len(w) == 4 and w.isdigit() and "1500" <= w <= "2199") for w in words)


# Words that turn a statement round. A question that holds one ("Which country did not sign?") is
# answered only by a sentence that turns round too; a sentence that does not states the plain case.
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without|cant|wont|aint"
    r"|(?:is|was|were|are|do|does|did|could|would|should|must|need|has|have|had)nt)\b|n['’]t\b",
    re.I,
)
# ... except where they turn nothing round: "whether or not it can", "not only ... but also", "the
# No. 2 official", "the No 1 song", "the No. of seats", a leading "No, ..." or "No." that answers the
# previous turn, and a closing "..., no?" that asks for agreement. ("wont" and "cant" are read as
# negations even in the rare "as he is wont to" and "the cant of politics".)
_NOT_A_NEGATION = re.compile(
    r"\bor not\b|\bnot (?:only|just|merely)\b|\bno\.\s*\d|\b(?-i:No) ?\d|\bno\.\s*of\b|^\s*no\b[,.!]|,\s*no\s*\?\s*$",
    re.I,
)
# A sentence may turn round in other words than the question's: "nonviolent" for "not violent",
# "refusals to pay" for "don't pay", "with the exception of Riverside" for "which is not", "the launch
# was postponed" for "why did it not go ahead". Whole words and their endings only: not "nonetheless",
# "exceptional", "lacklustre".
_DENIAL = re.compile(
    r"\bnon-?(?!e\b|etheless\b|sens|ces?\b)[a-z]|\b(?:unable|impossib\w*|refus(?:e[sd]?|als?|ing)|refrain\w*"
    r"|fail(?:s|ed|ings?|ures?)?(?!-safe)|lack(?:s|ed|ing)?|absen(?:t|ces?)|instead|except(?:ions?|ing)?"
    r"|exclud\w*|postpon\w*|cancel\w*|abort\w*|prevent\w*|prohibit\w*|forbid\w*|forbade|bann(?:ed|ing)"
    r"|(?-i:ban|[Bb]ans))\b",
    re.I,
)


def negates(text: str) -> bool:
    """Whether a question turns its statement round: "not", "never", "didn't", "without"."""
    # Most questions hold no negation word at all: one search tells, before the exceptions are read.
    return _NEGATION.search(text) is not None and _NEGATION.search(_NOT_A_NEGATION.sub(" ", text)) is not None


def denies(text: str) -> bool:
    """Whether a sentence turns round, in the question's words or its own ("nonviolent", "refused")."""
    return negates(text) or _DENIAL.search(text) is not None


@lru_cache(maxsize=1)
def _english() -> SpellChecker:
    return SpellChecker(language="en")


def english_word(word: str) -> bool:
    """Whether `word` is a word of English (pyspellchecker's list of 160,000 words and forms).

    "lender", "westerly" and "restated" are words in their own right, not other spellings of the
    "leader", "western" and "related" a corpus holds; "Krikalyov" and "goverment" are not. The list
    is read on first use (0.2 s, about 40 MB), only when a question has a word no passage holds.
    """
    return word.lower() in _english()


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
