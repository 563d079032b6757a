"""What the answer confidence, and the listing of a refused answer, cost per question, against `Engine.ask`.

    .venv/bin/python bench/confidence_cost.py ../shared/benchmarks/squad-v1.1-dev [--passages 300] [--questions 300]

The confidence is the signals (`answer.confidence_signals`) and the model (`Model.probability`); both
are timed on the real drafts of real questions, beside the p50 of the whole ask. A question refused at
the default threshold is also listed in the `closest` order (`retrieval.ordered` over the candidates
already gathered, and its citations), as `Engine.ask` lists it; that is timed too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import answer, confidence
from service.engine import DEFAULTS
from service.evaluation import benchmark_engine, read_questions
from service.query import analyse
from service.retrieval import CANDIDATES, candidates, ordered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args()
    passages = read_questions(args.folder / "passages.jsonl")[: args.passages]
    kept = {p["pid"] for p in passages}
    questions = [q for q in read_questions(args.folder / "questions.jsonl") if q["gold_pid"] in kept]
    questions = questions[: args.questions]
    model = confidence.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
        with benchmark_engine(folder) as (engine, _):
            index = engine.index()
            engine.ask("warm-up question")
            asks, costs, listings = [], [], []
            for q in questions:
                started = time.perf_counter()
                engine.ask(q["question"])
                asks.append(time.perf_counter() - started)
                query = analyse(index, engine.embedder, q["question"])
                found = candidates(index, query, CANDIDATES)
                hits = ordered(index, query, found, 5)
                ranked = answer.score_sentences(query, hits)
                quotes = answer.choose_sentences(query, hits, ranked)
                started = time.perf_counter()
                probability = model.probability(answer.confidence_signals(query, hits, ranked, quotes))
                costs.append(time.perf_counter() - started)
                if probability < DEFAULTS["MIN_CONFIDENCE"]:
                    started = time.perf_counter()
                    answer.citations_for(ordered(index, query, found, 5, "closest"))
                    listings.append(time.perf_counter() - started)
    ask_p50, cost_p50 = np.percentile(asks, 50) * 1000, np.percentile(costs, 50) * 1000
    print(f"questions {len(questions)}  Engine.ask p50 {ask_p50:.2f} ms  confidence p50 {cost_p50:.3f} ms")
    print(f"confidence / ask: {cost_p50 / ask_p50:.4f}  (p95 {np.percentile(costs, 95) * 1000:.3f} ms)")
    if listings:
        listing_p50 = np.percentile(listings, 50) * 1000
        print(
            f"refused {len(listings)}: closest listing p50 {listing_p50:.3f} ms, "
            f"listing / ask {listing_p50 / ask_p50:.4f}  (p95 {np.percentile(listings, 95) * 1000:.3f} ms)"
        )


if __name__ == "__main__":
    main()
