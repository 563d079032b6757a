"""How often a draft is right when its quoted sentences hold, or lack, the kind of thing the question asks for.

Reads the committed signal files of bench/train_confidence.py (bench/data/confidence) and, for each
question set, counts right drafts among those whose question is typed (`query.answer_type`: a figure,
a date, a person, a place) with `fits` 1 or 0: every kind together (the `typed` and `fits` signals),
then each kind apart, from the question's text. Why: a "how many / how old" answer without a figure
looks like an obvious refusal, but a kind's test can also miss what it looks for ("9000 BP", a
lowercase name), so the figures say which kinds the test can be trusted on (docs/benchmarks.md,
section 12).

    .venv/bin/python bench/asked_kinds.py ../shared/benchmarks
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.evaluation import read_questions  # noqa: E402
from service.query import answer_type  # noqa: E402

KINDS = ("number", "time", "person", "place")


def question_texts(benchmarks: Path) -> dict[str, str]:
    """Every question's text by its id, over the sets the signal files were drawn from."""
    files = [benchmarks / "squad-v1.1-dev", benchmarks / "squad-v2.0-dev"]
    files += [
        ROOT / "bench/data" / name
        for name in ("followups", "conversations", "paraphrases", "space-paraphrases")
    ]
    return {
        str(q.get("qid") or q.get("id")): q["question"]
        for f in files
        for q in read_questions(f / "questions.jsonl")
    }


def main(benchmarks: Path) -> None:
    texts = question_texts(benchmarks)
    for path in sorted((ROOT / "bench/data/confidence").glob("signals-*.csv.gz")):
        together: Counter[tuple[str, bool]] = Counter()
        apart: Counter[tuple[str, str, bool]] = Counter()
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row["typed"] != "1":
                    continue
                fits, right = row["fits"] == "1", row["right"] == "1"
                together[("fits" if fits else "lacks", right)] += 1
                kind = answer_type(texts.get(row["qid"], ""))
                if kind:
                    apart[(kind, "fits" if fits else "lacks", right)] += 1

        def share(counts: Counter, *key: str) -> str:
            right, wrong = counts[(*key, True)], counts[(*key, False)]
            return f"{right} of {right + wrong}"

        name = path.name.removeprefix("signals-").removesuffix(".csv.gz")
        each = "; ".join(
            f"{kind} {share(apart, kind, 'lacks')} / {share(apart, kind, 'fits')}" for kind in KINDS
        )
        print(
            f"{name}: right when the kind is lacking / held: all {share(together, 'lacks')} / "
            f"{share(together, 'fits')}; {each}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
