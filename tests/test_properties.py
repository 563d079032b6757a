"""Property-based tests on arbitrary Unicode: the chunker's offsets are exact, the composer's markers resolve."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.answer import NOT_FOUND, compose
from service.chunking import ChunkSettings, chunk, sentences
from service.documents import Document
from service.query import read
from service.retrieval import Hit
from service.store import Passage, Sentence

TOKEN = re.compile(r"\w+|[^\w\s]")
# Pieces that steer generated text into the chunker's interesting paths: paragraph breaks, sentence
# ends, abbreviations, initials, closing quotes, long words; mixed with any Unicode at all.
PIECES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\n \t\n", ".", "!", "?", "…", ". ", "Mr. ", "U.S. ", "J. ", "”", ")", "A", "Zeta",
     "über", "東京", "۱۲۳", "\u00a0", "\u2028", "\u3000", "x" * 40, "https://example.org/" + "a" * 30]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=30), PIECES), max_size=60).map("".join)
VISIBLE = st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs"))
NONBLANK = st.tuples(TEXT, VISIBLE, TEXT).map("".join)  # at least one character that is not a space


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a stand-in for the model's word pieces, cheap and monotone."""
    return len(TOKEN.findall(text))


SMALL = ChunkSettings(target_tokens=8, max_tokens=12, min_tokens=3)  # small, so every path is taken


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=TEXT, settings_=st.sampled_from([SMALL, ChunkSettings(target_tokens=3, max_tokens=4, min_tokens=2)])
)
def test_chunks_are_exact_ordered_stripped_and_cover_every_word_once(
    text: str, settings_: ChunkSettings
) -> None:
    spans = chunk(text, count_tokens, settings_)
    covered = [0] * len(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)  # in bounds, ordered, never overlapping
        assert not text[start].isspace() and not text[end - 1].isspace()  # stripped
        assert count_tokens(text[start:end]) <= settings_.max_tokens  # never over the model's limit
        for i in range(start, end):
            covered[i] += 1
        previous_end = end
    for i, char in enumerate(text):
        if not char.isspace():
            assert covered[i] == 1, (i, char)  # every non-space character in exactly one passage
    if text.strip():
        assert spans


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_sentences_are_exact_and_cover_every_word_once(text: str) -> None:
    spans = sentences(text)
    position = 0
    for start, end in spans:
        assert position <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        assert text[position:start].strip() == ""  # only whitespace between sentences
        position = end
    assert text[position:].strip() == ""


# ------------------------------------------------------------------ the answer composer

# Random directions, and a few fixed ones so that sentences of different passages often tie: then two
# sources (of different dates) are quoted together.
VECTOR = st.one_of(
    st.sampled_from([(1, 0, 0, 0), (0, 1, 0, 0), (1, 1, 0, 0)]),
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4),
).map(lambda values: _unit(np.array(values, dtype=np.float32)))
DATES = st.one_of(st.none(), st.sampled_from(["2022-07-15", "2023-08-24", "2024-01-01"]))


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else np.array([1, 0, 0, 0], dtype=np.float32)


@st.composite
def hits(draw: st.DrawFn) -> list[Hit]:
    """One to four retrieved passages of arbitrary Unicode text, their sentences found as the index finds them."""
    found = []
    for i in range(draw(st.integers(1, 4))):
        text = draw(NONBLANK)
        spans = sentences(text)
        vectors = [draw(VECTOR) for _ in spans]
        doc = Document(
            f"d{i}", f"d{i}.txt", draw(st.text(max_size=20)), draw(DATES), None, None, text, "0" * 64
        )
        passage = Passage(i, doc.id, 0, len(text), text)
        score = draw(st.floats(-1, 1, allow_nan=False))
        found.append(
            Hit(
                passage,
                doc,
                score,
                tuple(Sentence(a, b, v) for (a, b), v in zip(spans, vectors, strict=True)),
            )
        )
    return found


def _quotes_verbatim(answer: str, candidates: list[tuple[int, str, str | None]]) -> bool:
    """Whether `answer` is a sequence of "[Reported DATE: ]SENTENCE [n]" parts, each SENTENCE verbatim from hit n."""
    memo: dict[int, bool] = {}

    def parse(position: int) -> bool:
        if position == len(answer):
            return True
        if position in memo:
            return memo[position]
        start = position if position == 0 else position + 1  # parts are joined by one space
        if position and answer[position] != " ":
            memo[position] = False
            return False
        ok = False
        for n, sentence, published in candidates:
            for prefix in ("", f"Reported {published}: ") if published else ("",):
                part = f"{prefix}{sentence} [{n}]"
                if answer.startswith(part, start) and parse(start + len(part)):
                    ok = True
                    break
            if ok:
                break
        memo[position] = ok
        return ok

    return parse(0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=st.text(min_size=1, max_size=80), vector=VECTOR, found=hits(), min_confidence=st.floats(0, 1))
def test_every_marker_resolves_and_every_quote_is_verbatim(
    question: str, vector: np.ndarray, found: list[Hit], min_confidence: float
) -> None:
    answer = compose(read(question, vector), found, min_confidence)
    assert 0.0 <= answer.confidence <= 1.0
    assert [c.n for c in answer.citations] == list(range(1, len(found) + 1))
    for citation, hit in zip(answer.citations, found, strict=True):
        assert citation.passage == hit.passage.text  # the citation is exactly its passage
        assert (citation.start, citation.end) == (hit.passage.start, hit.passage.end)
    if not answer.answered:
        assert answer.answer == NOT_FOUND
        return
    assert answer.confidence >= min_confidence
    candidates = [
        (c.n, hit.passage.text[s.start : s.end], c.published)
        for c, hit in zip(answer.citations, found, strict=True)
        for s in hit.sentences
    ]
    assert _quotes_verbatim(answer.answer, candidates), answer.answer
