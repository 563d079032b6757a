"""Cutting a document's text into passages that follow paragraphs and sentences and fit the model.

Everything here works on character spans into the original text, never on copies, so every passage
and every quoted sentence can be traced back to its exact place in the article.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

TokenCounter = Callable[[str], int]
SpanCounter = Callable[[int, int], int]  # the tokens of text[start:end]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! ? (or a line break), optionally followed by closing quotes or brackets,
# then whitespace and something that can open a sentence.
_SENTENCE_END = re.compile(r"""([.!?]+["'”’)\]]*)(\s+)(?=["'“‘(\[]?[A-Z0-9À-ÖØ-Þ])|(\n+)""")
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt gen col lt sgt capt cmdr adm gov sen rep pres vs etc inc ltd
    co corp no nos fig approx dept est jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n
    e.g i.e a.m p.m""".split()
)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut; recorded in the index manifest so a change forces a rebuild."""

    target_tokens: int = 128  # all-MiniLM-L6-v2 was trained on inputs of up to 128 word pieces
    max_tokens: int = 254  # the model's 256 minus [CLS] and [SEP]: a hard limit, never exceeded
    min_tokens: int = 24  # shorter paragraphs (headings, captions) join the next paragraph
    # Version of the rules that keep captions, credits, sign-offs and datelines out of passages
    # (documents.boilerplate); 0 keeps everything. Recorded, so new rules rebuild the index.
    boilerplate: int = 1


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of the non-blank paragraphs of `text`, trimmed of surrounding whitespace."""
    spans = []
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences of `text[start:end]`, trimmed, in order.

    A rule-based splitter: it knows common abbreviations and initials, and that is enough for news
    prose; it needs no model download, and it is fast on a million passages.
    """
    end = len(text) if end is None else end
    spans = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.group(1) is not None:
            if _is_abbreviation(text, cursor, match.start()):
                continue
            cut = match.start() + len(match.group(1))
        else:
            cut = match.start()
        spans.append((cursor, cut))
        cursor = match.end()
    spans.append((cursor, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def _is_abbreviation(text: str, sentence_start: int, dot: int) -> bool:
    """Whether the full stop at `dot` ends an abbreviation or an initial rather than a sentence."""
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lstrip("(\"'“‘").lower()
    if len(word) == 1 and word.isalpha():
        return True  # an initial, as in "John F. Kennedy"
    return word in _ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def chunk(
    text: str, count_tokens: TokenCounter, settings: ChunkSettings = ChunkSettings()
) -> list[tuple[int, int]]:
    """Cut `text` into passage spans: whole paragraphs where they fit, else packed sentences.

    A paragraph shorter than `min_tokens` (a heading, a dateline) joins the paragraph after it. A
    paragraph over `target_tokens` is split at sentence ends; a single sentence over `max_tokens` is
    split between words. No span ever counts more than `max_tokens`.
    """

    @functools.cache  # spans are measured again as they grow; the tokenizer is the cost here
    def tokens(start: int, end: int) -> int:
        return count_tokens(text[start:end])

    units: list[tuple[int, int]] = []
    for p_start, p_end in paragraphs(text):
        if tokens(p_start, p_end) <= settings.target_tokens:
            units.append((p_start, p_end))
        else:
            units.extend(_pack(text, sentences(text, p_start, p_end), tokens, settings))

    def short_and_fits(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return tokens(*a) < settings.min_tokens and tokens(a[0], b[1]) <= settings.max_tokens

    merged = _join_while(units, short_and_fits)
    if (
        len(merged) > 1 and tokens(*merged[-1]) < settings.min_tokens
    ):  # a short last unit joins the one before
        before, last = merged[-2], merged[-1]
        if tokens(before[0], last[1]) <= settings.max_tokens:
            merged[-2:] = [(before[0], last[1])]
    return merged


def _join_while(
    spans: list[tuple[int, int]], join: Callable[[tuple[int, int], tuple[int, int]], bool]
) -> list[tuple[int, int]]:
    """Consecutive spans, each joined to the one before while `join(before, span)` allows it."""
    joined: list[tuple[int, int]] = []
    for span in spans:
        if joined and join(joined[-1], span):
            joined[-1] = (joined[-1][0], span[1])
        else:
            joined.append(span)
    return joined


def _pack(
    text: str, spans: list[tuple[int, int]], tokens: SpanCounter, settings: ChunkSettings
) -> list[tuple[int, int]]:
    """Greedily join consecutive sentence spans into passages of at most `target_tokens`.

    A sentence over `max_tokens` joins nothing and is split between words.
    """

    def fits(a: tuple[int, int], b: tuple[int, int]) -> bool:
        limit = settings.max_tokens
        return tokens(*a) <= limit and tokens(*b) <= limit and tokens(a[0], b[1]) <= settings.target_tokens

    return [
        piece
        for span in _join_while(spans, fits)
        for piece in (
            _split_words(text, span, tokens, settings.max_tokens)
            if tokens(*span) > settings.max_tokens
            else [span]
        )
    ]


def _split_words(text: str, span: tuple[int, int], tokens: SpanCounter, limit: int) -> list[tuple[int, int]]:
    """Split an over-long span between words into pieces of at most `limit` tokens."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, span[0], span[1])]
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and tokens(words[i][0], words[j][1]) <= limit:
            j += 1
        if tokens(words[i][0], words[j - 1][1]) > limit:
            pieces.extend(_split_chars(words[i], tokens, limit))
        else:
            pieces.append((words[i][0], words[j - 1][1]))
        i = j
    return pieces


def _split_chars(span: tuple[int, int], tokens: SpanCounter, limit: int) -> list[tuple[int, int]]:
    """Split one enormous 'word' (a URL, a run of symbols) by characters, as a last resort."""
    pieces = []
    start = span[0]
    while start < span[1]:
        end = span[1]
        while tokens(start, end) > limit:
            end = start + max(1, (end - start) // 2)
        pieces.append((start, end))
        start = end
    return pieces
