"""Chunking: exact offsets, paragraphs respected, and no passage over the model's limit."""

from __future__ import annotations

import itertools

import pytest

from service.chunking import ChunkSettings, chunk, paragraphs, sentences

from .conftest import DOCUMENTS, SHARED


def words(text: str) -> int:
    return len(text.split())


def test_sentences_split_at_sentence_ends_and_keep_abbreviations():
    text = 'Mr. Smith met Dr. Jones in the U.S. on Monday. They talked. "Will it fly?" he asked. Yes!'
    spans = sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Mr. Smith met Dr. Jones in the U.S. on Monday.",
        "They talked.",
        '"Will it fly?" he asked.',
        "Yes!",
    ]


def test_sentences_keep_initials_and_numbers_together():
    text = "John F. Kennedy set the goal in 1961. It cost 25.4 billion dollars."
    assert [text[a:b] for a, b in sentences(text)] == [
        "John F. Kennedy set the goal in 1961.",
        "It cost 25.4 billion dollars.",
    ]


def test_paragraphs_are_trimmed_spans():
    text = "  First para.\nstill first.\n\n\n  Second para.  \n \nThird."
    assert [text[a:b] for a, b in paragraphs(text)] == ["First para.\nstill first.", "Second para.", "Third."]


def test_short_paragraphs_stay_whole_and_passages_never_cross_long_paragraphs():
    first = "Alpha beta gamma delta. " * 5
    second = "Epsilon zeta eta theta. " * 5
    text = f"{first}\n\n{second}"
    spans = chunk(text, words, ChunkSettings(target_tokens=40, max_tokens=60, min_tokens=3))
    assert [text[a:b] for a, b in spans] == [first.strip(), second.strip()]


def test_heading_joins_the_paragraph_after_it():
    body = "The station orbits the Earth every ninety minutes at high speed. " * 2
    text = f"Joint program\n\n{body}"
    spans = chunk(text, words, ChunkSettings(target_tokens=40, max_tokens=60, min_tokens=5))
    assert len(spans) == 1
    assert text[spans[0][0] : spans[0][1]].startswith("Joint program\n\n")


def test_long_paragraph_is_split_at_sentence_ends():
    text = " ".join(f"Sentence number {i} says something short." for i in range(30))
    spans = chunk(text, words, ChunkSettings(target_tokens=20, max_tokens=30, min_tokens=2))
    assert len(spans) > 1
    for a, b in spans:
        assert text[a:b].endswith(".")
        assert words(text[a:b]) <= 20


def test_a_sentence_longer_than_the_limit_is_split_between_words_and_nothing_is_lost():
    text = " ".join(f"word{i}" for i in range(500))  # one "sentence", no punctuation
    spans = chunk(text, words, ChunkSettings(target_tokens=50, max_tokens=64, min_tokens=2))
    assert all(words(text[a:b]) <= 64 for a, b in spans)
    covered = " ".join(text[a:b] for a, b in spans)
    assert covered.split() == text.split()


def test_a_huge_unbroken_token_is_split_by_characters():
    text = "x" * 5000
    spans = chunk(text, lambda s: len(s) // 10, ChunkSettings(target_tokens=50, max_tokens=64, min_tokens=1))
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(len(text[a:b]) // 10 <= 64 for a, b in spans)


def _real_texts() -> list[str]:
    files = sorted(DOCUMENTS.glob("*.txt")) + sorted((SHARED / "corpora/wikipedia-space").glob("*.txt"))
    return [f.read_text(encoding="utf-8") for f in files]


@pytest.mark.parametrize("settings", [ChunkSettings(), ChunkSettings(target_tokens=254, min_tokens=0)])
def test_real_articles_offsets_exact_limits_kept_and_every_word_covered(embedder, settings):
    texts = _real_texts()
    assert len(texts) >= 10, "the shared Wikipedia corpus should be beside the project"
    for text in texts:
        spans = chunk(text, embedder.count_tokens, settings)
        assert spans == sorted(spans)
        for (_, b), (c, _) in itertools.pairwise(spans):
            assert b <= c, "passages must not overlap"
        for a, b in spans:
            passage = text[a:b]
            assert passage == passage.strip()
            assert embedder.count_tokens(passage) <= settings.max_tokens
        # Every word of the article is in exactly one passage: nothing silently cut.
        assert " ".join(text[a:b] for a, b in spans).split() == text.split()


def test_real_passages_start_at_paragraph_or_sentence_starts(embedder):
    text = _real_texts()[2]
    starts = {a for a, _ in paragraphs(text)}
    for p_start, p_end in paragraphs(text):
        starts |= {a for a, _ in sentences(text, p_start, p_end)}
    for a, _ in chunk(text, embedder.count_tokens):
        assert a in starts


def test_model_tokens_are_what_is_counted(embedder):
    # A word the tokenizer splits into several pieces must count as several tokens.
    assert embedder.count_tokens("Roskosmos") > 1
