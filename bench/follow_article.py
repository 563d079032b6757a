"""How much a follow-up should prefer the article of the last answer: `retrieval.ARTICLE_BONUS`, swept.

Over long articles a follow-up's passage is often beside the last answer's, and a passage of another
article can outrank it (bench/data/space-followups: follow-up R@1 0.62 without the bonus). This indexes
FOLDER once and asks every question through `Engine.ask`, history included, once per bonus, and prints
R@1 and answer-level hits per kind at the shipped threshold (docs/benchmarks.md, section 12). The
bonus applies only to a question read as a follow-up (`query.follows`). It then prints what the
article costs a follow-up, in the same process: finding the passage the last answer quoted
(`query.quoted_from`), and the search with and without the bonus, at p50 over four rounds.

    .venv/bin/python bench/follow_article.py bench/data/space-followups
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import retrieval
from service.engine import DEFAULTS, Engine
from service.evaluation import benchmark_engine, outcome, read_questions
from service.query import analyse, quoted_from

BONUSES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def main(
    folder: Path, bonuses: tuple[float, ...] = BONUSES
) -> dict[float, dict[str, tuple[float, float, int]]]:
    """R@1, answer hits and count per kind, for each bonus."""
    questions = read_questions(folder / "questions.jsonl")
    threshold = float(DEFAULTS["MIN_CONFIDENCE"])
    shipped = retrieval.ARTICLE_BONUS
    figures: dict[float, dict[str, tuple[float, float, int]]] = {}
    with benchmark_engine(folder, {"MIN_CONFIDENCE": 0.0}) as (engine, by_path):
        try:
            for bonus in bonuses:
                retrieval.ARTICLE_BONUS = bonus
                tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
                for q in questions:
                    answer = engine.ask(q["question"], history=q.get("history") or [])
                    judged = outcome(q, answer, by_path, threshold)
                    counts = tally[judged["kind"]]
                    counts[0] += judged["rank"] == 1
                    counts[1] += judged["hit"]
                    counts[2] += 1
                figures[bonus] = {k: (r / n, h / n, n) for k, (r, h, n) in sorted(tally.items())}
        finally:
            retrieval.ARTICLE_BONUS = shipped
        print(cost(engine, questions))
    return figures


def cost(engine: Engine, questions: list[dict], rounds: int = 4) -> str:
    """p50 milliseconds per follow-up of finding the quoted passage, and of the search with and without it."""
    index = engine.index()
    queries = [
        analyse(index, engine.embedder, q["question"], q["history"]) for q in questions if q.get("history")
    ]
    queries = [q for q in queries if q.follows is not None]
    found: list[float] = []
    times: dict[bool, list[float]] = {True: [], False: []}  # with the bonus, without
    for round_ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            quoted_from(index, query.already_said)
            found.append(time.perf_counter() - started)
            # Each round runs the other search first, so that neither always finds the caches warm.
            for boosted in (True, False) if round_ % 2 == 0 else (False, True):
                asked = query if boosted else dataclasses.replace(query, follows=None)
                started = time.perf_counter()
                retrieval.search(index, asked, DEFAULTS["TOP_K"])
                times[boosted].append(time.perf_counter() - started)

    def p50(times: list[float]) -> str:
        return f"{statistics.median(times) * 1000:.3f} ms"

    return (
        f"{len(queries)} follow-ups with a quoted passage, p50 over {rounds} rounds: finding it {p50(found)}; "
        f"search with the article bonus {p50(times[True])}, without {p50(times[False])}"
    )


if __name__ == "__main__":
    for bonus, kinds in main(Path(sys.argv[1])).items():
        print(
            f"bonus {bonus:4}: "
            + "  ".join(f"{k} R@1 {r:.3f} hits {h:.3f} (n {n})" for k, (r, h, n) in kinds.items())
        )
