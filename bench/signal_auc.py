"""How well each confidence signal, and the out-of-fold confidence, tells right drafts from wrong ones, per set.

Reads the committed signal files of bench/train_confidence.py (bench/data/confidence) and prints, for
each question set, the area under the ROC curve of "the draft is right" for the out-of-fold logistic
confidence (`train_confidence.out_of_fold`, the shipped method) and for the signals that separate
best, either way (an AUC under 0.5 means a higher value goes with wrong drafts). Why: on SQuAD-built
sets the word-overlap signals separate best, and the model leans on them; on questions in the
reader's own words (`paraphrases`, `space-paraphrases`) the same signals point the other way, so
the confidence cannot tell right drafts there from wrong ones (docs/benchmarks.md, section 12).

    .venv/bin/python bench/signal_auc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_confidence import out_of_fold, read_signals

from service import confidence

SHOWN = 5  # signals printed per set, those farthest from 0.5 first


def main() -> None:
    data = read_signals()
    probability = out_of_fold(data, "logistic")
    print("| set | drafts | right | confidence AUC | signals farthest from 0.5 (AUC) |")
    print("|---|---|---|---|---|")
    for name in sorted(set(data["dataset"])):
        rows = data["dataset"] == name
        right = data["right"][rows]
        if right.min() == right.max():  # every draft right, or none: no AUC
            continue
        aucs = {
            signal: roc_auc_score(right, column)
            for signal, column in zip(confidence.SIGNALS, data["X"][rows].T, strict=True)
            if np.ptp(column) > 0
        }
        farthest = sorted(aucs.items(), key=lambda item: -abs(item[1] - 0.5))[:SHOWN]
        print(
            f"| {name} | {rows.sum()} | {right.mean():.3f} | {roc_auc_score(right, probability[rows]):.3f} | "
            + ", ".join(f"{signal} {auc:.2f}" for signal, auc in farthest)
            + " |"
        )


if __name__ == "__main__":
    main()
