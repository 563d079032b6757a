"""Trial, not shipped: keep a follow-up in the article of the last answer, and measure what it buys.

Over long articles a follow-up's passage is often beside the last answer's, and a passage of another
article can outrank it (bench/data/space-followups: R@1 0.62 for follow-ups). This asks every question
of FOLDER as `issqa eval` does, but takes 100 hits, adds BONUS to the hybrid score of those from the
article whose passage holds the last answer's first sentence (only for a question read as a follow-up,
`query.context`), re-ranks, and answers from the first ten at the shipped threshold. The article is
told by its title: benchmark folders hold one document per passage. It prints R@1 and answer hits per
kind for each bonus (docs/benchmarks.md, section 12).

    .venv/bin/python bench/follow_article.py bench/data/space-followups
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import answer, confidence
from service.engine import DEFAULTS
from service.evaluation import benchmark_engine, read_questions
from service.query import analyse
from service.retrieval import Hit, search

BONUSES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 10.0)
MARKER = re.compile(r" \[\d+\]")


def reranked(hits: list[Hit], article: str | None, bonus: float) -> list[Hit]:
    """The hits re-ranked with `bonus` added to the hybrid score of those from `article`."""
    return sorted(
        hits, key=lambda h: h.rank_score + (bonus if h.document.title == article else 0.0), reverse=True
    )


def main(folder: Path) -> None:
    questions = read_questions(folder / "questions.jsonl")
    model = confidence.load()
    tallies: dict[float, dict[str, list[int]]] = {bonus: {} for bonus in BONUSES}
    with benchmark_engine(folder, {"MIN_CONFIDENCE": 0.0}) as (engine, by_path):
        index = engine.index()
        passages = [(p, d) for d in index.documents().values() for p in index.passages_of(d.id)]
        for q in questions:
            history = q.get("history") or []
            query = analyse(index, engine.embedder, q["question"], history)
            hits = search(index, query, 100)
            said = MARKER.sub("", query.already_said).strip()[:80]  # the last answer's first sentence
            article = (
                next((d.title for p, d in passages if said and said in p.text), None)
                if query.context
                else None
            )
            for bonus in BONUSES:
                ranked = reranked(hits, article, bonus)[:10]
                given = answer.compose(query, ranked, DEFAULTS["MIN_CONFIDENCE"], model=model)
                text = given.answer.lower() if given.answered else ""
                tally = tallies[bonus].setdefault(q.get("kind", "?"), [0, 0, 0])
                tally[0] += bool(ranked) and by_path.get(ranked[0].document.path) == q["gold_pid"]
                tally[1] += any(a.lower() in text for a in q["answers"])
                tally[2] += 1
    for bonus, kinds in tallies.items():
        print(
            f"bonus {bonus:5}: "
            + "  ".join(
                f"{k} R@1 {r / n:.3f} hits {h / n:.3f} (n {n})" for k, (r, h, n) in sorted(kinds.items())
            )
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
