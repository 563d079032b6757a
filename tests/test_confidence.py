"""The answer confidence: the committed model, its reproduction from the script, and its calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service import confidence
from service.engine import DEFAULTS

from .conftest import SHARED, bench_script


def _training_script():
    return bench_script("train_confidence")


def test_the_script_reproduces_the_committed_model_from_the_committed_signals():
    fitted = _training_script().fit(write=False)
    committed = json.loads(confidence.MODEL_FILE.read_text())
    assert fitted["signals"] == committed["signals"]
    for key in ("mean", "scale", "coef"):
        np.testing.assert_allclose(fitted[key], committed[key], rtol=1e-6, atol=1e-9)
    assert fitted["intercept"] == pytest.approx(committed["intercept"], rel=1e-6)
    for key in ("x", "y"):
        np.testing.assert_allclose(
            fitted["calibration"][key], committed["calibration"][key], rtol=1e-6, atol=1e-9
        )


def test_the_committed_model_reads_only_signals_the_code_computes_and_gives_probabilities():
    model = confidence.load()
    assert set(model.signals) <= set(confidence.SIGNALS)
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(200, len(model.signals)))
    values = [model.probability(dict(zip(model.signals, row, strict=True))) for row in signals]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert len(set(values)) > 5, "the model tells questions apart"


def test_the_held_out_confidence_is_calibrated_and_refuses_what_the_documents_lack():
    """Out-of-fold by article, as bench/train_confidence.py reports it (docs/benchmarks.md, section 12)."""
    script = _training_script()
    data = script.read_signals()
    probability = script.out_of_fold(data, "logistic")
    assert script.ece(probability, data["right"]) <= 0.05
    committed = json.loads(script.FIGURES_FILE.read_text())
    threshold = committed["logistic"]["threshold"]
    assert threshold == DEFAULTS["MIN_CONFIDENCE"], "the shipped default is the threshold the fit chose"
    assert script.choose_threshold(data, probability) == threshold, "and the rule chooses it again"
    figures = script.figures(data, probability, threshold)
    removed = figures["removed"]
    assert removed["refused_unanswerable"] >= 0.6
    assert removed["answered_answerable"] >= 0.9
    assert removed["right_when_answered_answerable"] >= 0.7
    assert figures["offtopic"]["refused_unanswerable"] >= 0.95


def test_a_question_of_a_paragraph_removed_set_is_answerable_exactly_when_its_paragraph_is_indexed():
    """`removed` and its two follow-up versions: the label is what the confidence is measured against."""
    sets = {
        name: (passages, questions)
        for name, passages, questions in _training_script().question_sets(SHARED / "benchmarks")
        if name.endswith("removed")
    }
    assert set(sets) == {"removed", "followups-removed", "conversations-removed"}
    for name, (passages, questions) in sets.items():
        indexed = {p["pid"] for p in passages}
        assert all(q["answerable"] == (q["gold_pid"] in indexed) for q in questions), name
        answerable = sum(q["answerable"] for q in questions)
        assert 0.3 < answerable / len(questions) < 0.7, name  # about half the paragraphs are dropped
        assert all(q.get("history") for q in questions) or name == "removed"


def test_a_model_round_trips_through_its_json_and_rejects_unknown_signals(tmp_path):
    model = confidence.load()
    again = confidence.Model.from_dict(json.loads(json.dumps(model.to_dict())))
    row = dict.fromkeys(model.signals, 0.5)
    assert again.probability(row) == model.probability(row)
    broken = model.to_dict()
    broken["signals"] = [*broken["signals"][:-1], "made_up_signal"]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="made_up_signal"):
        confidence.load(path)


def test_the_threshold_leaves_room_on_both_targets_rather_than_meeting_one_by_a_hair():
    """0.3 answers 95% and refuses 60%, exactly the refusal target; 0.5 answers 93% and refuses 70%."""
    script = _training_script()
    answerable = np.array([0.1] * 5 + [0.4] * 2 + [0.9] * 93)  # 100 questions whose paragraph stayed
    unanswerable = np.array([0.1] * 60 + [0.4] * 10 + [0.9] * 30)  # 100 whose paragraph was removed
    probability = np.concatenate([answerable, unanswerable])
    data = {
        "dataset": np.array(["removed"] * 200),
        "answerable": np.array([1] * 100 + [0] * 100),
        "right": np.array([1] * 100 + [0] * 100),
        "learn": np.ones(200, dtype=bool),
    }
    assert script.room(data, probability, 0.2) == pytest.approx(0.0)  # refuses exactly 60%
    assert script.choose_threshold(data, probability) == pytest.approx(0.41)  # the lowest of 0.41..0.90


def test_the_v2_bound_is_the_most_any_threshold_refuses_at_the_answered_share():
    """Ten answerable questions and ten unanswerable: answering 8 of 10 allows refusing 6 at most."""
    script = _training_script()
    answerable = np.array([0.1, 0.3, 0.5, 0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9])
    unanswerable = np.array([0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9])
    data = {"dataset": np.array(["v2"] * 20), "answerable": np.array([1] * 10 + [0] * 10)}
    refused, answered = script.refused_at(data, np.concatenate([answerable, unanswerable]), "v2", 0.8)
    assert answered == pytest.approx(0.8)  # the threshold is 0.5: it refuses 0.1 and 0.3
    assert refused == pytest.approx(0.6)  # and every unanswerable question under 0.5
