"""Tune the hybrid retrieval weights on a SQuAD-format folder, and compare the retrieval modes.

Indexes the passages like `issqa eval`, computes every question's candidates and signals once
(`retrieval.candidates`), then scores dense-only, keyword-only and hybrid rankings, and grid-searches
`retrieval.WEIGHTS` for MRR@10 subject to Recall@5 >= 0.95 where reachable.

    .venv/bin/python bench/tune_retrieval.py ../shared/benchmarks/squad-v1.1-dev [--limit N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import retrieval
from service.evaluation import benchmark_engine
from service.query import read

GRID = {
    "keyword": [0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8],
    "sentence": [0.0, 0.25, 0.5, 0.75, 1.0],
    "coverage": [0.0, 0.1, 0.2, 0.3],
}


def metrics(cases: list[tuple[retrieval.Candidates, np.ndarray]], mode: str, weights: dict) -> dict:
    """Recall@1/5/10 and MRR@10 of the gold document over the ranked candidates."""
    ranks = []
    for found, gold in cases:
        order = np.argsort(-retrieval.rank(found, mode, weights), kind="stable")[:10]
        hit = np.nonzero(gold[order])[0]
        ranks.append(int(hit[0]) + 1 if len(hit) else None)
    n = len(ranks)
    return {
        "recall@1": sum(r == 1 for r in ranks) / n,
        "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
        "recall@10": sum(1 for r in ranks if r) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
    }


def row(name: str, m: dict) -> str:
    return (
        f"| {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-grid", action="store_true", help="only compare the modes")
    args = parser.parse_args()

    questions = [json.loads(x) for x in (args.folder / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if not q.get("is_impossible") and q.get("gold_pid")]
    if args.limit:
        questions = random.Random(0).sample(questions, min(args.limit, len(questions)))
    cases = []
    with benchmark_engine(args.folder) as (engine, by_path):
        index = engine.index()
        vectors = engine.embedder.encode([q["question"] for q in questions])
        for q, vector in zip(questions, vectors, strict=True):
            found = retrieval.candidates(index, read(q["question"], vector))
            passages = index.passages(found.ids)
            docs_by_id = index.documents(p.document_id for p in passages.values())
            gold = np.array(
                [by_path[docs_by_id[passages[pid].document_id].path] == q["gold_pid"] for pid in found.ids]
            )
            cases.append((found, gold))

    print(f"questions: {len(cases)}\n")
    print("| retrieval | R@1 | R@5 | R@10 | MRR@10 |\n|---|---|---|---|---|")
    print(row("dense only", metrics(cases, "dense", retrieval.WEIGHTS)))
    print(row("keyword (BM25) only", metrics(cases, "keyword", retrieval.WEIGHTS)))
    print(row("hybrid, current weights", metrics(cases, "hybrid", retrieval.WEIGHTS)))
    if args.no_grid:
        return
    best = None
    for values in itertools.product(*GRID.values()):
        weights = {**retrieval.WEIGHTS, **dict(zip(GRID, values, strict=True))}
        m = metrics(cases, "hybrid", weights)
        key = (m["recall@5"] >= 0.95, m["mrr@10"])
        if best is None or key > best[0]:
            best = (key, weights, m)
    print(row(f"hybrid, best {best[1]}", best[2]))


if __name__ == "__main__":
    main()
