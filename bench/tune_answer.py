"""Tune the answer composer's sentence weights on a SQuAD-format folder (never on our own questions).

Indexes the passages like `issqa eval`, retrieves for every question whose gold passage comes
first, records each candidate sentence's signals (`answer.score_sentences`) and whether it holds a
gold answer, then grid-searches `answer.WEIGHTS` for the answer hit rate. Prints the current weights'
hit rate beside the best found, and the mean number of sentences quoted.

    .venv/bin/python bench/tune_answer.py ../shared/benchmarks/squad-v1.1-dev [--limit N]
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

from service import answer
from service.evaluation import benchmark_engine
from service.query import analyse
from service.retrieval import search

SIGNALS = ["similarity", "overlap", "passage", "novelty", "person", "time", "number", "place"]
GRID = {
    "person": [0.0, 0.05, 0.1, 0.2, 0.3],
    "time": [0.0, 0.05, 0.1, 0.2],
    "number": [0.0, 0.05, 0.1, 0.2],
    "place": [0.0, 0.05, 0.1],
}


def hit_rate(
    cases: list,
    weights: dict[str, float],
    margin: float,
    adjacent: float | None = None,
    typed: float | None = None,
):
    """Share of questions whose quoted sentence(s) hold a gold answer, and mean sentences quoted.

    Mirrors `answer.choose_sentences`: the best sentence, a second one within `margin`, else the
    sentence after the best one within `adjacent`, else that sentence within `typed` when it holds
    the kind of thing asked for and the best one does not.
    """
    w = np.array([weights.get(name, 1.0 if name == "similarity" else 0.0) for name in SIGNALS])
    hits, quoted = 0, 0
    for signals, holds, where, kind in cases:
        scores = signals @ w
        order = np.argsort(-scores)
        chosen = [order[0]]
        n, start = where[order[0]]
        after = [i for i in range(len(where)) if where[i][0] == n and where[i][1] > start]
        nxt = min(after, key=lambda i: where[i][1]) if after else None
        if len(order) > 1 and scores[order[1]] >= scores[order[0]] - margin:
            chosen.append(order[1])
        elif adjacent is not None and nxt is not None and scores[nxt] >= scores[order[0]] - adjacent:
            chosen.append(nxt)
        elif typed is not None and kind is not None and nxt is not None:
            column = SIGNALS.index(kind)
            fits = not signals[order[0], column] and signals[nxt, column]
            if fits and scores[nxt] >= scores[order[0]] - typed:
                chosen.append(nxt)
        hits += bool(holds[chosen].any())
        quoted += len(chosen)
    return hits / len(cases), quoted / len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=3000)
    args = parser.parse_args()

    questions = [json.loads(x) for x in (args.folder / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if not q.get("is_impossible")]
    questions = random.Random(0).sample(questions, min(args.limit, len(questions)))
    cases = []
    with benchmark_engine(args.folder) as (engine, by_path):
        index = engine.index()
        for q in questions:
            query = analyse(index, engine.embedder, q["question"])
            hits = search(index, query, answer.CANDIDATE_PASSAGES)
            if not hits or by_path[hits[0].document.path] != q["gold_pid"]:
                continue
            scored = answer.score_sentences(query, hits)
            texts = [
                answer.citations_for(hits)[quote.n - 1].passage[quote.start : quote.end]
                for quote, _ in scored
            ]
            signals = np.array([[s[name] for name in SIGNALS] for _, s in scored])
            holds = np.array([any(a.lower() in t.lower() for a in q["answers"]) for t in texts])
            where = [(quote.n, quote.start) for quote, _ in scored]
            cases.append((signals, holds, where, query.kind))

    margin, adjacent, typed = (
        answer.SECOND_SENTENCE_MARGIN,
        answer.ADJACENT_MARGIN,
        answer.TYPED_ADJACENT_MARGIN,
    )
    current, quoted = hit_rate(cases, answer.WEIGHTS, margin, adjacent, typed)
    print(f"questions with gold passage first: {len(cases)}")
    print(f"current weights {answer.WEIGHTS}: hit rate {current:.3f}, sentences {quoted:.2f}")
    best = (0.0, 0.0, {})
    for values in itertools.product(*GRID.values()):
        weights = {**answer.WEIGHTS, **dict(zip(GRID, values, strict=True))}
        rate, quoted = hit_rate(cases, weights, margin, adjacent, typed)
        if rate > best[0]:
            best = (rate, quoted, weights)
    print(f"best weights {best[2]}: hit rate {best[0]:.3f}, sentences {best[1]:.2f}")
    for m in (0.0, 0.02, 0.04, 0.08):
        for a in (None, 0.05, 0.1, 0.15, 0.2):
            rate, quoted = hit_rate(cases, best[2], m, a)
            print(
                f"  second-sentence margin {m:.2f}, adjacent {a}: hit rate {rate:.3f}, sentences {quoted:.2f}"
            )
    for t in (None, 0.1, 0.2, 0.3, 0.4, 0.6):
        rate, quoted = hit_rate(cases, best[2], margin, adjacent, t)
        print(
            f"  margin {margin}, adjacent {adjacent}, typed adjacent {t}: hit rate {rate:.3f}, sentences {quoted:.2f}"
        )


if __name__ == "__main__":
    main()
