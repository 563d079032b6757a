"""`issqa eval`: the project's real pipeline measured on a benchmark folder."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import main
from service.evaluation import ece, read_questions, write_corpus

from .conftest import ROOT, bench_script

OWN_SET = ROOT / "evals" / "iss-news"


def make_benchmark(folder: Path) -> Path:
    """A tiny benchmark in the shared format: three passages, answerable and impossible questions."""
    folder.mkdir()
    passages = [
        {"pid": "Moon#0", "title": "Moon", "text": "The Moon orbits the Earth at about 384,400 kilometres."},
        {"pid": "Mars#0", "title": "Mars", "text": "Mars has two small moons, Phobos and Deimos."},
        {"pid": "Rhine#0", "title": "Rhine", "text": "The Rhine flows from the Swiss Alps to the North Sea."},
    ]
    questions = [
        {"qid": "1", "question": "How far away is the Moon?", "gold_pid": "Moon#0", "answers": ["384,400"]},
        {"qid": "2", "question": "What are the moons of Mars called?", "gold_pid": "Mars#0", "answers": ["Phobos"]},
        {"qid": "3", "question": "Where does the Rhine end?", "gold_pid": "Rhine#0", "answers": ["North Sea"]},
        {"qid": "4", "question": "Who won the 1998 World Cup final?", "gold_pid": None, "answers": [],
         "is_impossible": True},
    ]  # fmt: skip
    (folder / "passages.jsonl").write_text("\n".join(json.dumps(p) for p in passages), encoding="utf-8")
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions), encoding="utf-8")
    return folder


def test_write_corpus_keeps_metadata_and_text(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    by_path = write_corpus(tmp_path / "docs", bench / "passages.jsonl")
    assert sorted(by_path.values()) == ["Mars#0", "Moon#0", "Rhine#0"]
    first = (tmp_path / "docs" / "000000.txt").read_text(encoding="utf-8")
    assert first.startswith('---\ntitle: "Moon"\n---\nThe Moon orbits')


def test_eval_command_prints_the_figures(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    result = CliRunner().invoke(main, ["eval", str(bench), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    assert figures["questions"] == 4 and figures["answerable"] == 3
    assert figures["recall@1"] == 1.0 and figures["mrr@10"] == 1.0
    assert figures["answer_hit_rate"] == 1.0
    assert figures["refusal_recall"] == 1.0 and figures["refusal_precision"] == 1.0
    assert set(figures["latency_ms"]) == {"p50", "p95", "p99"}


def test_eval_writes_each_answer_so_two_runs_compare_question_by_question(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    runs = {}
    for name, threshold in (("shipped", None), ("refuse-all", "1")):
        out = tmp_path / f"{name}.jsonl"
        env = {"ISSQA_MIN_CONFIDENCE": threshold} if threshold else {}
        result = CliRunner().invoke(
            main, ["eval", str(bench), "--json", "--answers", str(out)], env=env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        figures = json.loads(result.output[result.output.index("{") :])
        rows = read_questions(out)
        assert [r["question"] for r in rows] == [
            q["question"] for q in read_questions(bench / "questions.jsonl")
        ]
        # The lines add up to the printed figures.
        answerable = [r for r in rows if not r["impossible"]]
        assert sum(r["hit"] for r in answerable) / len(answerable) == figures["answer_hit_rate"]
        assert sum(r["rank"] == 1 for r in answerable) / len(answerable) == figures["recall@1"]
        runs[name] = rows
    moon = runs["shipped"][0]
    assert moon["hit"] and "384,400" in moon["draft"] and moon["cited"][0] == "Moon#0"
    assert moon["group"] == "single" and runs["shipped"][3]["group"] == "unanswerable"
    # Refused, the drafts are still written: what the user would have seen over the threshold.
    assert all(r["refused"] and not r["hit"] for r in runs["refuse-all"])
    assert runs["refuse-all"][0]["draft"] == moon["draft"] and runs["refuse-all"][0]["right"]

    compare = bench_script("compare_answers")
    table = compare.changes(runs["shipped"], runs["refuse-all"])
    assert len(table["single"]["lost"]) == 3 and not table["single"]["gained"]
    assert len(table["unanswerable"]["kept"]) == 1, "the impossible question is refused by both"
    rows = {line.split()[0]: line.split()[1:] for line in compare.report(table).splitlines()[1:-1]}
    # All three lost with the same draft, refused: nothing redrafted, every draft still right.
    assert rows["single"] == ["3", "1.000", "0.000", "3", "(0+3)", "0", "(0+0)", "0", "3→3"]
    with pytest.raises(ValueError):
        compare.changes(runs["shipped"], runs["shipped"][::-1])


def test_eval_says_when_it_cannot_write_the_answers_and_never_overwrites_the_benchmark(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    questions = (bench / "questions.jsonl").read_bytes()
    for out, message in (
        (tmp_path / "missing" / "answers.jsonl", "cannot write"),
        (tmp_path, "is a folder"),
        (bench / "questions.jsonl", "would overwrite the benchmark itself"),
    ):
        result = CliRunner().invoke(main, ["eval", str(bench), "--answers", str(out)])
        assert result.exit_code == 1
        assert result.output.strip().startswith("issqa: ") and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert (bench / "questions.jsonl").read_bytes() == questions


def test_eval_rejects_a_folder_without_the_files(tmp_path):
    result = CliRunner().invoke(main, ["eval", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"issqa: {tmp_path} has no passages.jsonl"


def test_the_project_question_set_is_well_formed():
    passages = {
        json.loads(line)["pid"]: json.loads(line)
        for line in (OWN_SET / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    }
    questions = [
        json.loads(x) for x in (OWN_SET / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(questions) >= 60
    assert sum(q["is_impossible"] for q in questions) >= 10
    assert sum(bool(q.get("history")) for q in questions) >= 10
    for q in questions:
        if not q["is_impossible"]:
            assert all(a in passages[q["gold_pid"]]["text"] for a in q["answers"]), q["qid"]


def test_the_space_follow_up_tuning_set_is_well_formed():
    # The tuning twin of evals/space-conversations: the same corpus, its own hand-written questions,
    # checked by the checks its builder runs (bench/make_space_followups.py), without writing a file.
    folder = ROOT / "bench" / "data" / "space-followups"
    held_out = ROOT / "evals" / "space-conversations"
    assert (folder / "passages.jsonl").read_bytes() == (held_out / "passages.jsonl").read_bytes()
    builder = bench_script("make_space_followups")
    passages = read_questions(folder / "passages.jsonl")
    checks = builder.make_space_conversations.check_questions
    assert checks(passages, folder / "questions.jsonl", **builder.MINIMUMS) == []


SPACE_PARAPHRASES = ROOT / "bench" / "data" / "space-paraphrases"


@pytest.fixture(scope="module")
def space_paraphrases() -> tuple[ModuleType, list[dict]]:
    """bench/make_space_paraphrases.py as a module, and the set's passages."""
    return bench_script("make_space_paraphrases"), read_questions(SPACE_PARAPHRASES / "passages.jsonl")


def test_the_space_paraphrase_tuning_set_is_well_formed(space_paraphrases):
    # Single questions in the reader's own words, and questions the corpus does not answer, over the
    # held-out corpus: checked by its builder's checks, without writing a file.
    builder, passages = space_paraphrases
    twin = ROOT / "bench" / "data" / "space-followups"
    assert (SPACE_PARAPHRASES / "passages.jsonl").read_bytes() == (twin / "passages.jsonl").read_bytes()
    errors, questions = builder.check_questions(passages, SPACE_PARAPHRASES / "questions.jsonl")
    assert errors == []
    assert {q["kind"] for q in questions} == {"paraphrase", "unanswerable"}
    # Its per-article minimum applies to every Wikipedia article: the passages must still say which.
    assert len({p["title"] for p in passages if p.get("source") == "Wikipedia"}) == 10


def test_a_space_paraphrase_must_not_reuse_its_passages_words(space_paraphrases):
    builder, passages = space_paraphrases
    by_pid = {p["pid"]: p for p in passages}
    pid = "Artemis_program#35"
    copied = {
        "qid": "sp-001",
        "question": "How long will missions at the Artemis Base Camp last, and what will they study?",
        "gold_pid": pid,
        "title": by_pid[pid]["title"],
        "answers": ["up to two months"],
        "is_impossible": False,
        "kind": "paraphrase",
    }
    assert builder.check_question(copied, by_pid) == [
        f"sp-001: shares 4 content words with {pid} (at most 1): base, camp, mission, study"
    ]
    assert builder.check_question({**copied, "kind": "fact"}, by_pid) == [
        "sp-001: kind must be 'paraphrase' or 'unanswerable'"
    ]


def test_an_unanswerable_space_question_has_no_gold_and_no_answers(space_paraphrases):
    builder, passages = space_paraphrases
    by_pid = {p["pid"]: p for p in passages}
    bare = {"qid": "sp-002", "question": "Who will command Artemis IV?", "gold_pid": None, "answers": []}
    bare |= {"title": None, "is_impossible": True, "kind": "unanswerable"}
    assert builder.check_question(bare, by_pid) == []
    assert builder.check_question({**bare, "gold_pid": "Artemis_program#35"}, by_pid) == [
        "sp-002: an unanswerable question must have no gold_pid"
    ]
    assert builder.check_question({**bare, "answers": ["2028"]}, by_pid) == [
        "sp-002: an unanswerable question must have no answers"
    ]
    assert builder.check_question({**bare, "is_impossible": False}, by_pid) == [
        "sp-002: an unanswerable question must have is_impossible true"
    ]


def test_a_follow_up_into_another_article_must_leave_the_last_answers_article(tmp_path):
    folder = ROOT / "bench" / "data" / "space-followups"
    builder = bench_script("make_space_followups")
    passages = read_questions(folder / "passages.jsonl")
    questions = read_questions(folder / "questions.jsonl")
    same = next(q for q in questions if q["kind"] == "followup")
    across = next(q for q in questions if q["kind"] == "followup-across")
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({**q, "kind": "followup-across"}) + "\n" for q in (same, across)))
    none = {"min_counts": {}, "min_followup_per_article": 0, "min_followup_news": 0}
    none |= {"min_three_turn": 0, "min_personal": 0}
    errors = builder.make_space_conversations.check_questions(passages, path, **none)
    assert errors == [f"{same['qid']}: followup-across is answered in the last answer's article"]


def test_eval_scores_answers_per_kind_and_the_calibration(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    follow_up = {
        "qid": "5",
        "question": "What are they called?",
        "gold_pid": "Mars#0",
        "answers": ["Phobos"],
        "history": [
            {"role": "user", "content": "How many moons does Mars have?"},
            {"role": "assistant", "content": "Mars has two small moons, Phobos and Deimos. [1]"},
        ],
    }
    with (bench / "questions.jsonl").open("a", encoding="utf-8") as f:
        f.write("\n" + json.dumps(follow_up))
    # Every draft answered (threshold 0), so the answer text, not the refusal rule, is what is scored.
    result = CliRunner().invoke(
        main, ["eval", str(bench), "--json"], env={"ISSQA_MIN_CONFIDENCE": "0"}, catch_exceptions=False
    )
    figures = json.loads(result.output[result.output.index("{") :])
    kinds = figures["by_kind"]
    assert set(kinds) == {"single", "follow-up", "unanswerable"}
    assert kinds["single"]["answerable"] == 3 and kinds["follow-up"]["answerable"] == 1
    assert kinds["unanswerable"]["unanswerable"] == 1
    # An answer-level hit: the gold answer is in the answer text, not only in a cited passage.
    assert kinds["follow-up"]["answer_hit_rate"] == 1.0


def test_eval_ranks_a_refused_question_by_the_passages_listed_to_the_user(tmp_path, monkeypatch):
    from service import retrieval
    from service.evaluation import evaluate

    bench = make_benchmark(tmp_path / "bench")
    # The closest order turned upside down: what a refused question lists is then visibly not the
    # order its draft was drawn from.
    upside_down = {name: -weight for name, weight in retrieval.CLOSEST_WEIGHTS.items()}
    monkeypatch.setattr(retrieval, "CLOSEST_WEIGHTS", upside_down)
    refused: list[dict] = []
    figures = evaluate(bench, {"MIN_CONFIDENCE": 1.0}, record=refused.append)
    drafted: list[dict] = []
    evaluate(bench, {"MIN_CONFIDENCE": 0.0}, record=drafted.append)
    assert all(r["refused"] for r in refused) and not any(r["refused"] for r in drafted[:3])
    assert [r["draft"] for r in refused] == [r["draft"] for r in drafted], "the same drafts"
    assert all(r["cited"][0] == r["gold_pid"] for r in drafted[:3])
    assert not any(r["cited"][0] == r["gold_pid"] for r in refused[:3])
    assert figures["recall@1"] == 0.0


def test_expected_calibration_error_on_worked_examples():
    # One bin holding 0.9 twice, right once: off by 0.4. Two bins, each exactly right on average: 0.
    assert ece(np.array([0.9, 0.9]), np.array([True, False])) == pytest.approx(0.4)
    assert ece(np.array([0.25, 0.25, 0.25, 0.25, 1.0]), np.array([1, 0, 0, 0, 1])) == pytest.approx(0.0)
    # 0.3 sits in the bin [0.3, 0.4) with 0.35, not in the one below it.
    assert ece(np.array([0.3, 0.35]), np.array([0, 1])) == pytest.approx(0.175)
