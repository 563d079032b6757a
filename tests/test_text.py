"""Word helpers and keyword search: the query's words, and the index stemming them as it stems passages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

from service.indexing import build_index
from service.store import Index
from service.text import (
    content_words,
    date_stems,
    denies,
    english_word,
    keyword_query,
    keyword_terms,
    keyword_tokens,
    names_a_date,
    negates,
    said_on,
    stems,
)


def test_the_keyword_query_is_every_content_word_once():
    assert keyword_query('Who replaced "Rogozin" at Roskosmos?') == ("replaced", "rogozin", "roskosmos")
    assert keyword_query("Who is it?") == ()
    assert keyword_terms(["soyuz", "Kikina".lower(), "soyuz", ""]) == ("kikina", "soyuz")


def test_keyword_tokens_are_what_fts5_porter_unicode61_made_of_the_text():
    assert keyword_tokens("Russia’s Roscosmos previously added flights; Café ISS_QA") == [
        "russia", "s", "roscosmo", "previous", "ad", "flight", "cafe", "iss", "qa",
    ]  # fmt: skip


def test_keyword_search_finds_every_passage_holding_a_word_in_any_form(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    passages = [p for doc in index.documents() for p in index.passages_of(doc)]
    for word in ("astronauts", "flights", "flight", "rogozin", "previously", "zzyzx"):
        (stem,) = keyword_tokens(word)
        holding = {p.id for p in passages if stem in keyword_tokens(p.text)}
        titles = {d.id for d in index.documents().values() if stem in keyword_tokens(d.title)}
        holding |= {p.id for p in passages if p.document_id in titles}
        found = {n.passage_id for n in index.keyword_search((word,), 1000)}
        assert found == holding, word
    assert {n.passage_id for n in index.keyword_search(("flights",), 1000)} == {
        n.passage_id for n in index.keyword_search(("flight",), 1000)
    }, "a word and its plural meet"
    assert not index.keyword_search(("zzyzx",), 5) and not index.keyword_search((), 5)


def test_keyword_scores_rank_passages_with_more_of_the_words_first(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    hits = index.keyword_search(("rogozin", "roscosmos", "dismissed"), 10)
    assert hits and all(a.score >= b.score > 0 for a, b in pairwise(hits))
    best = index.passages([hits[0].passage_id])[hits[0].passage_id].text.lower()
    assert "rogozin" in best


def test_keyword_search_answers_request_threads_at_once(corpus, tmp_path, fake_embedder):
    """One searcher per loaded index serves every thread; concurrent searches give what one alone does."""
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    queries = [("rogozin",), ("soyuz", "crew"), ("flights",), ("nasa", "roscosmos", "station")]
    expected = {words: index.keyword_search(words, 10) for words in queries}
    assert all(expected.values())
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda words: (words, index.keyword_search(words, 10)), queries * 25))
    assert all(hits == expected[words] for words, hits in results)


def test_keyword_search_finds_and_scores_what_the_fts5_table_did(corpus, tmp_path, fake_embedder):
    """Retrieval's weights were tuned on FTS5's BM25: the Tantivy index matches the same passages
    (quoted words, "Russia’s" as a phrase) and scores them alike (Tantivy stores lengths rounded)."""
    import sqlite3

    from .test_retrieval import ANSWERABLE

    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    documents = index.documents()
    fts = sqlite3.connect(":memory:")
    fts.execute("CREATE VIRTUAL TABLE f USING fts5(title, body, tokenize = 'porter unicode61')")
    fts.executemany(
        "INSERT INTO f (rowid, title, body) VALUES (?, ?, ?)",
        [(p.id, documents[d].title, p.text) for d in documents for p in index.passages_of(d)],
    )
    questions = [q for q, _ in ANSWERABLE] + ["Was Russia’s moon lander manned?", "Which probe crashed?"]
    for question in questions:
        words = keyword_query(question)
        expected = fts.execute(
            "SELECT rowid, -bm25(f) FROM f WHERE f MATCH ? ORDER BY bm25(f)",
            (" OR ".join(f'"{w}"' for w in words),),
        ).fetchall()
        found = index.keyword_search(words, 1000)
        assert {n.passage_id for n in found} == {pid for pid, _ in expected}, question
        assert found[0].passage_id == expected[0][0], question
        scores = dict(expected)
        for n in found[:5]:
            assert abs(n.score - scores[n.passage_id]) <= 0.05 * scores[expected[0][0]], question


def test_a_typographic_apostrophe_reads_as_a_plain_one():
    assert content_words("Russia’s agency") == content_words("Russia's agency") == {"russia's", "agency"}
    assert stems("Russia’s agency") == stems("Russia's agency") == stems("Russia agency")


def test_an_articles_date_is_read_as_a_question_names_a_date():
    assert date_stems("2022-07-15") == stems("July 2022 15") == stems("15 July, 2022")
    assert date_stems("2023-12-01") == stems("December 2023 1")
    for not_a_day in (None, "", "2022", "2022-07", "2022-13-01", "2022-07-00", "July 2022", "15/07/2022"):
        assert date_stems(not_a_day) == frozenset(), not_a_day


def test_only_a_question_naming_a_month_or_year_reads_dates_as_evidence():
    assert names_a_date("Who was dismissed in July ?".split()) and names_a_date(["in", "2022"])
    assert not names_a_date("Who replaced him ?".split())
    assert not names_a_date("Who led the march in Selma ?".split()), "a month only when written as one"
    assert not names_a_date(["of", "the", "1200", "seats"]), "not a plausible year"


def test_a_question_turned_round_is_told_by_its_negation_however_written():
    for negated in (
        "Which country did not sign?",
        "Who didn’t fly?",
        "Why wasnt it launched?",
        "What can't it do?",
        "A crew without a pilot",
        "Nobody came.",
        "It was never launched.",
        "Why cant it dock?",
        "Which crew wont fly?",
        "Who mustnt board?",
        "No one flew?",
        "Why were no 2 flights alike?",
    ):
        assert negates(negated) and denies(negated), negated
    for plain_statement in (
        "Which country signed?",
        "Notably, the crew is knowledgeable.",
        "Whether or not a problem can be solved?",
        "Who not only flew but also commanded?",
        "Who is the agency's No. 2?",
        "No, who replaced him then?",
        "No. Who replaced him then?",
        "What is the No. of seats on a Soyuz?",
        "Which was the No 1 song that year?",
        "It docked in 2023, no?",
    ):
        assert not negates(plain_statement), plain_statement


def test_a_sentence_may_turn_round_in_its_own_words():
    for denial in (
        "Protest that is nonviolent.",
        "He refused to pay the tax.",
        "The launch failed twice.",
        "All except the beroids have such larvae.",
        "It was impossible to sustain.",
        "The flight was postponed.",
        "Illegal boycotts and refusals to pay taxes.",
        "Cities lie near the coast, with the exception of Riverside.",
        "Refraining from violence helps.",
        "The flight was cancelled.",
        "His absences from the crew were noted.",
        "The report lists the agency's failings.",
        "The ban on exports held.",
        "Bans on exports followed.",
        "Excepting Riverside, every city lies near the coast.",
    ):
        assert denies(denial) and not negates(denial), denial
    for plain_statement in (
        "The crew launched and docked.",
        "Nonetheless, Luna-25 crashed.",
        "An exceptional probe crashed.",
        "A lacklustre launch.",
        "A failsafe valve held.",
        "A fail-safe valve held.",
        "He called the plan nonsense.",
        "A nonsensical plan.",
        "Nonces were exchanged.",
        "Ban Ki-moon spoke at the launch.",
    ):
        assert not denies(plain_statement), plain_statement


def test_a_sentence_dated_by_its_day_states_the_day_it_means():
    said = "On Friday the Kremlin announced the dismissal of Rogozin."
    assert said_on(said, "2022-07-15") == date_stems("2022-07-15"), "a Friday piece's own Friday"
    assert said_on(said, "2022-08-01") == stems("July 2022 29"), "the last Friday before a Monday"
    assert said_on("Yesterday the crew landed.", "2023-08-24") == stems("August 2023 23")
    assert said_on("The probe crashed last week.", "2023-08-03") == stems("July 2023")
    assert said_on("Rogozin had threatened in February to leave.", "2022-07-15") == frozenset()
    assert said_on(said, None) == frozenset(), "an undated article dates nothing"


def test_a_name_spelled_another_way_is_read_as_the_passages_spell_it(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    assert index.holds("Roskosmos") and not index.holds("Roscosmos")
    assert index.spelled_as("Roscosmos") == "Roskosmos"  # one edit; written as the passages write it
    assert index.spelled_as("Krikalyov") == "Krikalev"  # two edits, in a word of eight letters or more
    assert index.spelled_as("Rogozni") == "Rogozin"  # two letters swapped
    assert index.spelled_as("Rogozin") is None, "a word the passages hold is left as it is"
    assert index.spelled_as("Bogozin") is None, "another first letter is another word"
    assert index.spelled_as("Zzyzxvark") is None, "nothing near it"


def test_words_of_english_are_told_from_slips_and_transliterated_names():
    for word in ("lender", "Westerly", "restated", "facet", "trait", "Soyuz"):
        assert english_word(word), word
    for word in ("Krikalyov", "Roscosmos", "Roskosmos", "goverment", "seperated", "Sojuz"):
        assert not english_word(word), word
