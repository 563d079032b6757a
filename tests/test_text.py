"""Word helpers: the keyword query, and its budget on large corpora."""

from __future__ import annotations

from service.indexing import build_index
from service.store import Index
from service.text import content_words, keyword_query, stems


def test_the_keyword_query_quotes_every_content_word():
    assert keyword_query('Who replaced "Rogozin" at Roskosmos?') == '"replaced" OR "rogozin" OR "roskosmos"'
    assert keyword_query("Who is it?") is None


def test_over_the_budget_the_rarest_words_are_kept():
    counts = {"station": 900, "soyuz": 40, "kikina": 3, "flights": 300}
    frequencies = lambda words: {w: counts[w] for w in words}  # noqa: E731
    question = "Kikina Soyuz flights station"
    assert (
        keyword_query(question, frequencies, budget=2000) == '"flights" OR "kikina" OR "soyuz" OR "station"'
    )
    assert keyword_query(question, frequencies, budget=400) == '"flights" OR "kikina" OR "soyuz"'
    assert keyword_query(question, frequencies, budget=50) == '"kikina" OR "soyuz"'
    assert keyword_query(question, frequencies, budget=1) == '"kikina"', "the rarest word is always kept"


def test_word_frequencies_are_the_keyword_index_own_counts(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    words = ["astronauts", "flights", "flight", "rogozin", "previously", "zzyzx"]
    frequencies = index.word_frequencies(words)
    for word in words:
        expected = len(index.keyword_search(f'"{word}"', 1000))
        assert frequencies[word] == expected, word
    assert frequencies["zzyzx"] == 0 and frequencies["flights"] > 1


def test_a_typographic_apostrophe_reads_as_a_plain_one():
    assert content_words("Russia’s agency") == content_words("Russia's agency") == {"russia's", "agency"}
    assert stems("Russia’s agency") == stems("Russia's agency") == stems("Russia agency")
