"""Choose the refusal threshold (`MIN_SCORE`) from data, and print the trade-off it makes.

The rule is "refuse when no passage found has a cosine to the question of MIN_SCORE or more". Two score
samples decide it, neither drawn from the project's own test questions:
  answerable  SQuAD v1.1 dev questions against their own passages (indexed like documents/);
  off-topic   the same questions against documents/, which cannot answer any of them.
For each threshold it prints the share of answerable questions still answered and of off-topic
questions refused, and on SQuAD v2.0 (on-topic but impossible questions) the refusal precision and
recall. The suggested threshold is the lowest that refuses at least 95% of off-topic questions.

    .venv/bin/python bench/calibrate_refusal.py ../shared/benchmarks [--documents documents]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.engine import DEFAULTS, Engine, Settings
from service.evaluation import benchmark_engine
from service.query import read
from service.retrieval import search

THRESHOLDS = [round(x, 2) for x in np.arange(0.10, 0.61, 0.05)]


def top_scores(engine: Engine, questions: list[str]) -> np.ndarray:
    """The refusal rule's input for each question: the best cosine among the passages found."""
    index = engine.index()
    vectors = engine.embedder.encode(questions)
    return np.array(
        [
            max(h.score for h in search(index, read(q, v), DEFAULTS["TOP_K"]))
            for q, v in zip(questions, vectors, strict=True)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", type=Path)
    parser.add_argument("--documents", type=Path, default=Path("documents"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    v1 = [
        json.loads(x) for x in (args.benchmarks / "squad-v1.1-dev/questions.jsonl").read_text().splitlines()
    ]
    v2 = [
        json.loads(x) for x in (args.benchmarks / "squad-v2.0-dev/questions.jsonl").read_text().splitlines()
    ]
    with benchmark_engine(args.benchmarks / "squad-v1.1-dev") as (squad, _):
        answerable = top_scores(squad, [q["question"] for q in v1])
    with tempfile.TemporaryDirectory() as tmp:
        news = Engine(Settings.from_config({**DEFAULTS, "DOCUMENTS": args.documents.resolve(), "INDEX": tmp}))
        news.build()
        off_topic = top_scores(news, [q["question"] for q in v1])
    with benchmark_engine(args.benchmarks / "squad-v2.0-dev") as (squad2, _):
        v2_scores = top_scores(squad2, [q["question"] for q in v2])
    impossible = np.array([q["is_impossible"] for q in v2])

    rows = []
    for t in THRESHOLDS:
        refused_v2 = v2_scores < t
        tp = int((refused_v2 & impossible).sum())
        rows.append(
            {
                "threshold": t,
                "answerable_answered": float((answerable >= t).mean()),
                "off_topic_refused": float((off_topic < t).mean()),
                "v2_refusal_precision": tp / max(1, int(refused_v2.sum())),
                "v2_refusal_recall": tp / max(1, int(impossible.sum())),
            }
        )
    suggested = next((r["threshold"] for r in rows if r["off_topic_refused"] >= 0.95), None)
    if args.json:
        print(json.dumps({"rows": rows, "suggested": suggested}, indent=2))
        return
    print("threshold  answerable answered  off-topic refused  v2 refusal P  v2 refusal R")
    for r in rows:
        print(
            f"{r['threshold']:9.2f}  {r['answerable_answered']:19.3f}  {r['off_topic_refused']:17.3f}"
            f"  {r['v2_refusal_precision']:12.3f}  {r['v2_refusal_recall']:12.3f}"
        )
    print(f"suggested MIN_SCORE (lowest refusing >= 95% off-topic): {suggested}")


if __name__ == "__main__":
    main()
