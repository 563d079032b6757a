"""Retrieval over documents/ with the real model: the right passage is cited first.

Each case names the phrase(s) that mark the passage(s) which answer; where two passages both answer,
either may come first. Questions are facts, paraphrases that share few words with the text, names
and numbers.
"""

from __future__ import annotations

import pytest

from service import create_app

ANSWERABLE = [
    ("Who replaced Rogozin?", "Yuri Borisov"),
    ("When is the first of the joint missions planned?", "planned for September"),
    ("Which cosmonaut will fly on a SpaceX rocket?", "Anna Kikina"),
    ("What did Rogozin threaten to do?", "crash the space station"),
    ("Which countries take part in the ISS project?", "European Space Agency (ESA)"),
    ("What was Borisov responsible for in the government?", "military-industrial complex"),
    ("How high above the Earth does the station orbit?", "400 kilometers"),
    ("What happened to Russia's moon lander?", "Luna-25"),
    ("Who is the executive director of manned programs?", "Krikalev"),
    ("Why was an extra Soyuz flight added?", "compensate for the time"),
    ("How many cosmonauts were to fly on Crew Dragon between 2022 and 2024?", "three Russian cosmonauts"),
    ("Does Russia plan to build its own space station?", "install its own space station"),
    ("Why did NASA depend on Soyuz rockets for a while?", "space shuttle program"),
    ("What did Moscow say about the agreement?", "interests of Russia and the United States"),
    ("What did NASA rely on after its shuttle program ended?", "entirely dependent"),
    ("Which Indian mission landed on the moon?", "Chandrayaan-3"),
]

# Hybrid retrieval ranks the answering passage second or lower for these: "space station" and
# "cooperation" are words of many passages, and the answers say "ISS" and "collaboration". Strict
# xfail: the day retrieval gets them right, this fails and they move up into ANSWERABLE.
KNOWN_MISSES = [
    ("How big is the space station?", "football field"),
    ("Did the war stop the cooperation on the station?", "collaboration continued"),
]

UNANSWERABLE = [
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
    "Who won the 2018 FIFA World Cup?",
    "What is the price of Bitcoin today?",
    "Which team won the NBA finals?",
]


def holds(text: str, phrase: str | tuple[str, ...]) -> bool:
    """Whether `text` holds the phrase, or one of the phrases where either passage answers."""
    return any(p in text for p in (phrase if isinstance(phrase, tuple) else (phrase,)))


@pytest.mark.parametrize(("question", "phrase"), ANSWERABLE)
def test_the_answering_passage_is_cited_first(ask, question, phrase):
    body = ask(question)  # answered or not (tests/test_answer.py): the right passage comes first
    assert holds(body["citations"][0]["passage"], phrase), [c["passage"][:60] for c in body["citations"]]


@pytest.mark.xfail(strict=True, reason="hybrid retrieval ranks the answer lower (recorded misses)")
@pytest.mark.parametrize(("question", "phrase"), KNOWN_MISSES)
def test_known_misses_of_hybrid_retrieval(ask, question, phrase):
    assert phrase in ask(question)["citations"][0]["passage"]


def test_most_answers_quote_the_answering_words(ask):
    # Sentence choice, not only passage choice: the quoted sentences carry the answer itself.
    quoted = []
    for question, phrase in ANSWERABLE:
        quoted.append(holds(ask(question)["answer"], phrase))
    assert sum(quoted) >= 0.8 * len(ANSWERABLE), quoted


@pytest.mark.parametrize("mode", ["dense", "keyword"])
def test_the_comparison_modes_answer_too(news_index, mode):
    # The confidence was fitted on hybrid scores; a `dense` or `keyword` search still hands it the
    # hybrid score, so answerable questions are answered rather than refused wholesale.
    client = create_app({**news_index, "TESTING": True, "RETRIEVAL": mode}).test_client()
    answered = []
    for question, phrase in ANSWERABLE:
        body = client.post("/api/ask", json={"question": question}).get_json()
        answered.append(body["answered"] and holds(body["answer"], phrase))
    assert sum(answered) >= 0.5 * len(ANSWERABLE), answered


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_questions_the_documents_do_not_answer_are_refused(ask, question):
    body = ask(question)
    assert body["answered"] is False
    assert "may not say" in body["answer"]
    assert body["citations"], "the nearest passages are still listed"


ROGOZIN_TURN = [
    {"role": "user", "content": "Who replaced Rogozin?"},
    {
        "role": "assistant",
        "content": "The new head of the Russian space agency will be Vice Prime Minister Yuri Borisov. [1]",
    },
]


def test_a_follow_up_is_resolved_from_the_history(ask):
    question = "What was his previous job?"
    alone = ask(question)["citations"][0]["passage"]
    with_history = ask(question, history=ROGOZIN_TURN)["citations"][0]["passage"]
    assert "military-industrial complex" in with_history
    assert "military-industrial complex" not in alone  # without the history "his" means nothing


def test_a_new_topic_is_not_dragged_back_to_the_old_one(ask):
    question = "What happened to the Luna-25 spacecraft?"
    with_history = ask(question, history=ROGOZIN_TURN)
    assert "Luna-25" in with_history["citations"][0]["passage"]
    assert with_history["citations"][0]["passage"] == ask(question)["citations"][0]["passage"]


def test_questions_about_now_prefer_the_newer_article(ask):
    body = ask("What is the current plan for cross-flights between the US and Russia?")
    assert body["citations"][0]["published"] == max(c["published"] for c in body["citations"])


def test_different_figures_from_different_dates_are_both_quoted_newest_first(ask):
    body = ask("How many Russian cosmonauts will fly on American spacecraft?")
    answer = body["answer"]
    assert answer.startswith("Reported 2023-08-24: ")
    assert "three Russian cosmonauts" in answer and "two Russians" in answer
    assert answer.index("three Russian cosmonauts") < answer.index("two Russians")
    assert "Reported 2022-07-15: " in answer


def test_keyword_syntax_in_a_question_is_plain_text(ask):
    for question in ['Rogozin" OR NEAR(x y', "ISS* AND -NASA", "title:Borisov ^ (", "’’’ ... ???"]:
        body = ask(question)
        assert isinstance(body["answered"], bool)


LUNA_TURN = [
    {"role": "user", "content": "Which probe crashed on the moon?"},
    {
        "role": "assistant",
        "content": "Russia’s space program suffered a major blow this week when the unmanned Luna-25 spacecraft "
        "crashed while trying to land on the moon’s south pole, three days before India’s Chandrayaan-3 "
        "successfully did so. [1]",
    },
]


def test_it_in_a_follow_up_means_the_earlier_subject(ask):
    # "it" is the probe: alone, "manned" finds the crewed station's passages instead.
    question = "Was it manned?"
    alone = ask(question)["citations"][0]["passage"]
    with_history = ask(question, history=LUNA_TURN)["citations"][0]["passage"]
    assert "Luna-25" in with_history
    assert "Luna-25" not in alone


def test_a_third_turn_keeps_the_subject_the_second_leaned_on(news_index, ask):
    # The second question ("Was it manned?") names nothing and its answer neither: the third one's
    # "it" is still the probe of the first turn.
    from service.query import conversation_context
    from service.store import Index

    history = [
        *LUNA_TURN,
        {"role": "user", "content": "Was it manned?"},
        {"role": "assistant", "content": "No. [1]"},
    ]
    question = "Where did it try to land?"
    assert "Luna-25" in conversation_context(Index(news_index["INDEX"]), question, history).split()
    assert "Luna-25" in ask(question, history=history)["citations"][0]["passage"]


def test_a_question_that_names_its_own_subject_ignores_the_history(ask):
    # No pronoun, no ellipsis: the earlier turn about Borisov changes nothing, citations included.
    question = "What did the West do after the invasion of Ukraine?"
    alone = ask(question)
    with_history = ask(question, history=ROGOZIN_TURN)
    assert "sanctions" in with_history["citations"][0]["passage"]
    assert [c["passage"] for c in with_history["citations"]] == [c["passage"] for c in alone["citations"]]


def test_the_topic_of_the_earlier_turn_is_kept_and_its_details_dropped(news_index, embedder):
    # A follow-up takes from the earlier turn only the words most of the passages they find share
    # (the topic), not every word of it; a question naming its own subject takes nothing.
    from service.query import conversation_context, earlier_terms
    from service.store import Index

    index = Index(news_index["INDEX"])
    history = [
        {"role": "user", "content": "Did the war in Ukraine change the cooperation with Russia?"},
        {"role": "assistant", "content": "However, the collaboration continued on the ISS. [1]"},
    ]
    asked, named = earlier_terms("What did they decide about it?", history)
    assert asked == ["war", "Ukraine", "change", "cooperation", "Russia"]
    assert "ISS" in named
    context = conversation_context(index, "What did they decide about it?", history).split()
    assert set(context) < set(asked + named)
    assert "Ukraine" in context and "change" not in context
    assert conversation_context(index, "What did NASA decide about the Soyuz flights?", history) == ""


def test_a_follow_up_prefers_the_article_of_the_last_answer(news_index, embedder, monkeypatch):
    # The bonus orders the hits, but each hit's rank_score stays the plain hybrid score: it measures
    # how well the passage fits the question, which the confidence reads.
    import dataclasses

    from service import retrieval
    from service.query import analyse
    from service.store import Index

    # A bonus large enough to reorder for sure: what is checked is how it orders, not its size.
    monkeypatch.setattr(retrieval, "ARTICLE_BONUS", 10.0)
    index = Index(news_index["INDEX"])
    query = analyse(index, embedder, "What was his previous job?", ROGOZIN_TURN)
    assert query.follows is not None
    home = index.passages([query.follows])[query.follows].document_id
    boosted = retrieval.search(index, query, 10)
    plain = retrieval.search(index, dataclasses.replace(query, follows=None), 10)
    plain_scores = {h.passage.id: h.rank_score for h in plain}
    both = [h for h in boosted if h.passage.id in plain_scores]
    assert both and all(h.rank_score == plain_scores[h.passage.id] for h in both)

    def key(hit: retrieval.Hit) -> float:
        return hit.rank_score + retrieval.ARTICLE_BONUS * (hit.passage.document_id == home)

    assert [key(h) for h in boosted] == sorted((key(h) for h in boosted), reverse=True)
    assert [h.rank_score for h in plain] == sorted((h.rank_score for h in plain), reverse=True)
    assert boosted[0].passage.document_id == home
    assert [h.passage.id for h in boosted] != [h.passage.id for h in plain], "the bonus changed the order"
    for mode in ("dense", "keyword"):  # the comparison modes rank by their own score alone
        with_article = retrieval.search(index, query, 10, mode)
        without = retrieval.search(index, dataclasses.replace(query, follows=None), 10, mode)
        assert [h.passage.id for h in with_article] == [h.passage.id for h in without]


# A question in the reader's own words that the documents answer but the confidence refuses: the
# passage that answers it is listed first when nothing is quoted.
REFUSED_PARAPHRASE = ("Who is the boss of the manned programmes?", "Krikalev")


def test_a_refused_question_lists_the_passage_most_likely_to_answer_first(ask):
    question, phrase = REFUSED_PARAPHRASE
    body = ask(question)
    assert not body["answered"], body["confidence"]
    assert phrase in body["citations"][0]["passage"], [c["passage"][:60] for c in body["citations"]]


def test_only_a_refused_question_on_its_own_is_listed_in_the_closest_order(app, embedder):
    # An answer cites the order its quotes were drawn from (its [n] markers point into it), and a
    # follow-up keeps the conversation's order; only a question on its own with nothing quoted is listed
    # by `closest`. Each case checks that the two orders differ, so that the test can fail.
    from service import get_engine, retrieval
    from service.query import analyse

    engine = get_engine(app)
    index = engine.index()

    def orders(question: str, history: list[dict[str, str]]) -> tuple[list[str], list[str], list[str], bool]:
        query = analyse(index, embedder, question, history)
        served = engine.ask(question, history=history)
        paths = [c.path + str(c.start) for c in served.citations]
        hybrid = [h.document.path + str(h.passage.start) for h in retrieval.search(index, query, 5)]
        closest = [
            h.document.path + str(h.passage.start) for h in retrieval.search(index, query, 5, "closest")
        ]
        assert hybrid != closest, question
        return paths, hybrid, closest, served.answered

    paths, hybrid, closest, answered = orders(REFUSED_PARAPHRASE[0], [])
    assert not answered and paths == closest
    paths, hybrid, closest, answered = orders("Who now runs the Russian space agency?", [])
    assert answered and paths == hybrid
    turn = [
        {"role": "user", "content": "Why was an extra Soyuz flight added?"},
        {"role": "assistant", "content": engine.ask("Why was an extra Soyuz flight added?").answer},
    ]
    paths, hybrid, closest, answered = orders("How much did it cost?", turn)
    assert not answered and paths == hybrid


def test_gathering_with_the_keywords_searched_beside_the_model_finds_what_one_step_after_another_finds(
    news_index, embedder
):
    # `Engine.ask` searches the keywords while the model embeds the question (`retrieval.gather`):
    # the query, the candidates and every signal are those of reading, embedding and searching in turn.
    import dataclasses

    import numpy as np

    from service import retrieval
    from service.query import analyse
    from service.store import Index

    index = Index(news_index["INDEX"])
    for question, history in (
        ("Who now runs the Russian space agency?", []),
        ("What was his previous job?", ROGOZIN_TURN),
    ):
        query, found = retrieval.gather(index, embedder, question, history)
        plain = analyse(index, embedder, question, history)
        serial = retrieval.candidates(index, plain, retrieval.CANDIDATES)
        assert np.array_equal(query.vector, plain.vector)
        assert dataclasses.replace(query, vector=None) == dataclasses.replace(plain, vector=None)
        assert found.signals[:, retrieval.SIGNALS.index("keyword")].any(), "the keyword half took part"
        assert found.ids == serial.ids and np.array_equal(found.signals, serial.signals)
        assert found.held.keys() == serial.held.keys()
