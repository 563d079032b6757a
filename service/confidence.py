"""The probability that an answer is right, from signals the answer step already computed.

A small model learned from data (bench/train_confidence.py, from ../shared alone, deterministic):
standardised signals, a logistic regression over them, then an isotonic map that turns its score into a
calibrated probability. It is stored as plain numbers in `confidence.json` beside this file, so serving
needs only numpy: no scikit-learn, no pickle, nothing that can run code when loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("confidence.json")

# The signals, in the model's order: see answer.confidence_signals for what each one measures.
SIGNALS = (
    "passage_cosine",
    "best_cosine",
    "rank_score",
    "rank_margin",
    "keyword",
    "coverage",
    "sentence_similarity",
    "sentence_score",
    "sentence_margin",
    "overlap",
    "novelty",
    "typed",
    "fits",
    "has_entities",
    "entities_in_passage",
    "entities_in_answer",
    "missing_in_passage",
    "question_words",
    "follow_up",
    "negation_unmet",
)


@dataclass(frozen=True)
class Model:
    """A calibrated logistic model: `probability(signals)` is the estimated chance the answer is right."""

    signals: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibration_x: np.ndarray  # isotonic map from the logistic score to a probability, as breakpoints
    calibration_y: np.ndarray

    def probability(self, signals: Mapping[str, float]) -> float:
        row = np.array([signals[name] for name in self.signals], dtype=np.float64)
        score = float(((row - self.mean) / self.scale) @ self.coef + self.intercept)
        return float(np.interp(score, self.calibration_x, self.calibration_y))

    def to_dict(self) -> dict[str, object]:
        return {
            "signals": list(self.signals),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "calibration": {"x": self.calibration_x.tolist(), "y": self.calibration_y.tolist()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Model:
        calibration = data["calibration"]
        assert isinstance(calibration, dict)
        return cls(
            signals=tuple(data["signals"]),  # type: ignore[arg-type]
            mean=np.array(data["mean"], dtype=np.float64),
            scale=np.array(data["scale"], dtype=np.float64),
            coef=np.array(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),  # type: ignore[arg-type]
            calibration_x=np.array(calibration["x"], dtype=np.float64),
            calibration_y=np.array(calibration["y"], dtype=np.float64),
        )


@lru_cache(maxsize=4)
def load(path: Path = MODEL_FILE) -> Model:
    """The model stored at `path` (the committed one by default), read once per process."""
    model = Model.from_dict(json.loads(path.read_text(encoding="utf-8")))
    unknown = set(model.signals) - set(SIGNALS)
    if unknown:
        raise ValueError(f"{path}: the model reads signals this code does not compute: {sorted(unknown)}")
    return model
