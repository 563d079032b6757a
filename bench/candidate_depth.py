"""Stage two's candidate depth: quality and cost of retrieval and answer at 50, 40, 30 and 20 per side.

Indexes the benchmark once, embeds every third question once, then runs `retrieval.search` and
`answer.compose` at each depth (`retrieval.CANDIDATES`: how many dense and how many keyword candidates
stage two scores), and prints R@1, R@5, MRR@10, the answer hit rate and their time per question.

    nice .venv/bin/python bench/candidate_depth.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import retrieval
from service.answer import compose
from service.engine import DEFAULTS
from service.evaluation import benchmark_engine, read_questions
from service.query import analyse

DEPTHS = (50, 40, 30, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--every", type=int, default=3, help="ask every Nth question")
    args = parser.parse_args()
    questions = read_questions(args.folder / "questions.jsonl")[:: args.every]
    with benchmark_engine(args.folder) as (engine, by_path):
        index = engine.index()
        queries = [analyse(index, engine.embedder, q["question"]) for q in questions]
        print(f"{len(questions)} questions over {index.size} passages")
        for depth in DEPTHS:
            retrieval.CANDIDATES = depth
            first = five = hits = 0
            reciprocal = 0.0
            took = []
            for q, query in zip(questions, queries, strict=True):
                started = time.perf_counter()
                found = retrieval.search(index, query, 10)
                answer = compose(query, found, DEFAULTS["MIN_CONFIDENCE"])
                took.append(time.perf_counter() - started)
                cited = [by_path.get(h.document.path) for h in found]
                rank = next((i for i, pid in enumerate(cited, 1) if pid == q["gold_pid"]), None)
                first += rank == 1
                five += bool(rank and rank <= 5)
                reciprocal += 1 / rank if rank else 0.0
                hits += answer.answered and any(a.lower() in answer.answer.lower() for a in q["answers"])
            n = len(questions)
            print(
                f"depth {depth}: R@1 {first / n:.4f}  R@5 {five / n:.4f}  MRR@10 {reciprocal / n:.4f}  "
                f"answer hit {hits / n:.4f}  search + answer p50 {statistics.median(took) * 1000:.2f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
