"""The question read once: what `Query` holds, and that nothing below the engine splits it again."""

from __future__ import annotations

import numpy as np
import pytest

from service import answer, retrieval, store, text
from service import query as query_module
from service.indexing import build_index
from service.query import analyse, leans_on_history, quoted_from, read, respell

from .test_retrieval import ROGOZIN_TURN


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_query_holds_the_questions_words_stems_kind_and_keyword_query():
    query = read("Who replaced Rogozin as head of Roscosmos?", unit(1, 0))
    assert query.kind == "person"
    assert query.stems == text.stems("Who replaced Rogozin as head of Roscosmos?")
    assert {"rogozin", "roscosmos", "replaced"} <= query.tokens
    assert query.keyword == ("head", "replaced", "rogozin", "roscosmos")
    assert query.search_stems == query.stems and not query.recent and query.context == ""


def test_a_follow_ups_context_widens_the_search_but_not_the_answer_words():
    query = read("What was his previous job?", unit(1, 0), context="Borisov Roscosmos", already_said="X [1]")
    assert "borisov" in query.keyword and "previous" in query.keyword
    assert text.stems("Borisov") < query.search_stems
    assert not text.stems("Borisov") & query.stems, "the answer is scored on the question's own words"
    assert query.already_said == "X [1]"


def test_questions_about_the_present_are_marked():
    assert read("Who heads Roscosmos now?", unit(1, 0)).recent
    assert not read("Who headed Roscosmos in 2018?", unit(1, 0)).recent


def test_the_keyword_query_keeps_every_content_word():
    """No budget of the rarest words any more: the pruned keyword search takes them all at any size."""
    query = read("Will Kikina fly Soyuz flights to the station?", unit(1, 0))
    assert query.keyword == ("flights", "fly", "kikina", "soyuz", "station")


def test_a_respelled_question_is_read_from_the_documents_spelling_and_shown_as_asked():
    query = read("What did Krikalyov say?", unit(1, 0), spelled="What did Krikalev say?")
    assert query.text == "What did Krikalyov say?" and query.spelled == "What did Krikalev say?"
    assert "krikalev" in query.keyword and "krikalev" in query.tokens and "krikalyov" not in query.tokens
    assert "krikalev" in query.lowered
    assert read("Who?", unit(1, 0), spelled="Who?").spelled == "", "unchanged is not respelled"


def test_respell_replaces_only_long_words_no_passage_holds_and_the_model_does_not_know(
    corpus, tmp_path, fake_embedder
):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = store.Index(tmp_path / "index")
    question = "Who headed ROSCOSMOS, Roscosmos or roscosmos before Rogozin?"
    assert respell(index, question, known=lambda word: False) == (
        "Who headed Roskosmos, Roskosmos or roskosmos before Rogozin?"
    )
    assert respell(index, question, known=lambda word: word.lower() == "roscosmos") == question
    assert respell(index, "Is Sojuz safe?", known=lambda word: False) == "Is Soyuz safe?"
    assert respell(index, "Is Erth safe?", known=lambda word: False) == "Is Erth safe?", "four letters: left"
    assert index.spelled_as("westerly") == "Western", "two edits from a word the passages hold..."
    assert respell(index, "Were the sanctions westerly?", known=lambda word: False) == (
        "Were the sanctions westerly?"
    ), "...but a word of English is left as it is"


def test_a_question_written_with_a_decomposed_accent_is_left_whole(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = store.Index(tmp_path / "index")
    question = "Was Rogozi\u0301n dismissed?"  # "i" and a combining accent: the passages' "Rogozin"
    assert respell(index, question, known=lambda word: False) == question


def test_a_question_names_a_date_when_it_or_its_context_writes_a_month_or_year():
    assert read("Who was dismissed in July 2022?", unit(1, 0)).dated
    assert read("Who replaced him then?", unit(1, 0), context="dismissed July 2022").dated
    assert (
        not read("Who led the march?", unit(1, 0)).dated and not read("Who replaced him?", unit(1, 0)).dated
    )


def test_the_earlier_questions_of_a_follow_up_are_respelled_too(news_index, embedder):
    from service.engine import Engine, Settings

    engine = Engine(Settings.from_config(news_index), embedder=embedder)
    history = [
        {"role": "user", "content": "Who was the boss of Roscosmos before Borisov?"},
        {"role": "assistant", "content": "The then Roskosmos boss Dmitri Rogozin had threatened ... [1]"},
    ]
    query = analyse(engine.index(), embedder, "What did he threaten?", history)
    assert query.context and "roskosmos" in query.tokens and "roscosmos" not in query.tokens


def test_names_spelled_another_way_find_the_same_answers(news_index, embedder):
    from service.engine import Engine, Settings

    engine = Engine(Settings.from_config(news_index), embedder=embedder)
    for asked, written in (("Krikalyov", "Krikalev"), ("Roscosmos", "Roskosmos")):
        question = (
            f"What did {asked} say?"
            if asked == "Krikalyov"
            else f"Who was the boss of {asked} before Borisov?"
        )
        as_asked, as_written = engine.ask(question), engine.ask(question.replace(asked, written))
        assert as_asked.answered and as_asked.answer == as_written.answer, (
            as_asked.answer,
            as_written.answer,
        )
        assert as_asked.question == question, "the question is shown as it was asked"


@pytest.fixture
def spy_on_splitting(monkeypatch):
    """Record every text that retrieval (the index keeps its passages' stems) and answer composition
    split into words."""
    split: list[str] = []
    for module in (store, answer):
        original = module.stems

        def recorded(value: str, original=original) -> frozenset[str]:
            split.append(value)
            return original(value)

        monkeypatch.setattr(module, "stems", recorded)
    return split


def test_nothing_below_the_engine_splits_the_question_again(news_index, embedder, spy_on_splitting):
    from service.engine import Engine, Settings

    engine = Engine(Settings.from_config(news_index), embedder=embedder)
    question = "Who was dismissed as head of Roscosmos in July 2022?"
    query = analyse(engine.index(), embedder, question)
    hits = retrieval.search(engine.index(), query, 5)
    result = answer.compose(query, hits, min_confidence=0.0)
    assert result.answered and spy_on_splitting, "passages and sentences are still split"
    assert all(question not in value for value in spy_on_splitting)
    follow_up = analyse(engine.index(), embedder, "Who replaced him?", ROGOZIN_TURN)
    answer.compose(follow_up, retrieval.search(engine.index(), follow_up, 5), min_confidence=0.0)
    assert all("Who replaced him?" not in value for value in spy_on_splitting)


@pytest.mark.parametrize(
    ("question", "leans"),
    [
        ("Where does that school have campuses?", True),  # a demonstrative after a verb
        ("What happened after that?", True),
        ("What was it called then?", True),
        ("What was the company called then?", True),  # "then" at the end: at that time
        ("Who designed the main one?", True),
        ("Who got the other half of the prize?", True),  # "the other", "the two", "like that" point back
        ("Which of the two companies later pulled out?", True),
        ("How often do impacts like that happen?", True),
        ("Is the same true of the cargo flights?", True),
        # ... but only in a question that names nothing of its own
        ("What are the two main segments of the ISS?", False),
        ("What is on the other side of the Moon?", False),
        ("Who were the three cosmonauts aboard Salyut 1?", False),
        ("Who flew the other 2 missions?", False),
        ("Who was the former head of Roscosmos?", False),  # "the former" is mostly an adjective
        (" Who got the other half?", True),  # a capital opening the question, or a sentence, or "I"
        ("Thanks. Who got the other half?", True),
        ("Did I miss the other half?", True),
        ("What was Russia's first moon mission in 50 years?", False),
        ("Who is the person that founded NASA?", False),  # "that" after a noun is a relative word
        ("Which spacecraft will carry the astronaut that NASA chose?", False),
    ],
)
def test_a_follow_up_is_told_by_its_cues(question, leans):
    assert leans_on_history(question) is leans


def test_a_follow_up_knows_the_passage_the_last_answer_quoted(news_index, embedder, monkeypatch):
    index = store.Index(news_index["INDEX"])
    said = ROGOZIN_TURN[1]["content"]
    follow_up = analyse(index, embedder, "What was his previous job?", ROGOZIN_TURN)
    assert follow_up.follows is not None
    assert "Vice Prime Minister Yuri Borisov." in index.passages([follow_up.follows])[follow_up.follows].text
    # The date a multi-date answer opens with is not part of the quote; nor is what follows its marker.
    dated = "Reported 2022-07-15: " + said.replace("[1]", "[1] Reported 2023-08-24: Something else. [2]")
    assert quoted_from(index, dated) == follow_up.follows
    assert quoted_from(index, answer.NOT_FOUND) is None, "a refusal quotes nothing"
    assert quoted_from(index, "The new head of the agency is a cat. [1]") is None, "not in any passage"
    assert quoted_from(index, "") is None
    assert quoted_from(index, said.removesuffix(" [1]")) is None, "without a marker iss-qa did not write it"
    undated = "Reported August 2023: " + said  # a date given as written, not as YYYY-MM-DD
    assert quoted_from(index, undated) == follow_up.follows
    monkeypatch.setattr(query_module, "MAX_QUOTE", 10)
    assert quoted_from(index, said) is None, "a quote longer than any sentence is not looked up"
    own_subject = analyse(index, embedder, "What happened to the Luna-25 spacecraft?", ROGOZIN_TURN)
    assert own_subject.follows is None, "a question on its own is not held to the last answer's article"


def test_a_follow_up_reads_which_passages_share_its_article(corpus, tmp_path, fake_embedder):
    # An article kept as several files with one title (as a benchmark keeps one file per paragraph) is
    # one article; a document with another title is not part of it, whatever it says.
    (corpus / "part-two.txt").write_text(
        "---\ntitle: NASA to resume joint ISS flights with Russia despite the Ukraine war\n---\n"
        "Anna Kikina trained for months in Houston before the flight.",
        encoding="utf-8",
    )
    (corpus / "other.txt").write_text(
        "---\ntitle: Something else\n---\nKikina trained in Houston too, says another article.",
        encoding="utf-8",
    )
    (corpus / "elsewhere").mkdir()  # the same title in another folder is another article
    (corpus / "elsewhere" / "copy.txt").write_text(
        "---\ntitle: NASA to resume joint ISS flights with Russia despite the Ukraine war\n---\n"
        "Kikina trained in Houston, a copy in another folder says.",
        encoding="utf-8",
    )
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = store.Index(tmp_path / "index")
    documents = index.documents()
    by_path = {d.path: d for d in documents.values()}
    for _ in range(2):  # read from the store, then from the index's cache
        assert index.articles(documents) == {
            doc_id: (d.path.rpartition("/")[0], d.title) for doc_id, d in documents.items()
        }
    home = index.passages_of(by_path["2022-07-15-nasa-resumes-joint-iss-flights-with-russia.txt"].id)[0]
    query = read("Where did Kikina train?", fake_embedder.encode(["Where did Kikina train?"])[0])
    found = retrieval.candidates(index, query, 100)
    same = retrieval._in_article(index, found, home.id)
    article = {
        pid
        for pid in found.ids
        if index.passages([pid])[pid].document_id
        in {
            by_path["2022-07-15-nasa-resumes-joint-iss-flights-with-russia.txt"].id,
            by_path["part-two.txt"].id,
        }
    }
    assert {pid for pid, flag in zip(found.ids, same, strict=True) if flag} == article
    owners = {index.passages([pid])[pid].document_id for pid in found.ids}
    others = {by_path["other.txt"].id, by_path["elsewhere/copy.txt"].id}
    assert {by_path["part-two.txt"].id} | others <= owners, "all three were candidates"
