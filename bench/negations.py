"""Questions turned round by a "not": how often a benchmark's questions do it, what reading it costs,
and a few such questions over `documents/` beside their plain forms (docs/benchmarks.md, section 12).

    .venv/bin/python bench/negations.py ../shared/benchmarks/squad-v2.0-dev
    .venv/bin/python bench/negations.py --scenario

The first counts the negated questions (`text.negates`) among the answerable and the unanswerable
ones, and how many of them meet a sentence that does not turn round (`text.denies`). The sentence is
the paragraph's first sentence holding a gold answer's text for an answerable question, and the one
sharing the most words with the question for an unanswerable one: what would most likely be quoted. It
then times both tests per question. The second asks each question over `documents/` and prints its
confidence (`respellings.ask_over_documents`); copied in with bench/respellings.py, it runs in a
checkout of any earlier commit too (the "before" figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from respellings import ask_over_documents  # noqa: E402

from service.chunking import sentences  # noqa: E402
from service.evaluation import read_questions  # noqa: E402
from service.text import stems  # noqa: E402

# Each plain question, then the same question turned round (each asked alone); the articles say only
# the plain case.
SCENARIO = [
    ["Which probe crashed on the Moon?"],
    ["Which probe did not crash on the Moon?"],
    ["Who replaced Rogozin?"],
    ["Who did not replace Rogozin?"],
]


def answer_sentence(question: dict, paragraph: str) -> str:
    """The sentence that would be quoted: the one holding a gold answer, else the one most like the question."""
    found = [paragraph[a:b] for a, b in sentences(paragraph)]
    holding = [s for s in found if any(answer in s for answer in question.get("answers", []))]
    if holding:
        return holding[0]
    asked = stems(question["question"])
    return max(found, key=lambda s: len(asked & stems(s)), default=paragraph)


def negations(folder: Path) -> None:
    from service.text import denies, negates  # not in checkouts before the negation signal

    passages = {
        p["pid"]: p["text"]
        for p in map(json.loads, (folder / "passages.jsonl").read_text(encoding="utf-8").splitlines())
    }
    questions = read_questions(folder / "questions.jsonl")
    for label, unanswerable in (("answerable", False), ("unanswerable", True)):
        group = [q for q in questions if bool(q.get("is_impossible")) == unanswerable]
        negated = [q for q in group if negates(q["question"])]
        unmet = [q for q in negated if not denies(answer_sentence(q, passages[q["gold_pid"]]))]
        print(
            f"{label:12} {len(group):5} questions: {len(negated):4} negated, {len(unmet):4} of them meet a sentence that is not"
        )
    texts = [(q["question"], answer_sentence(q, passages[q["gold_pid"]])) for q in questions[:2000]]
    seconds = timeit.timeit(lambda: [negates(q) and denies(s) for q, s in texts], number=5) / (5 * len(texts))
    most = timeit.timeit(lambda: [(negates(q), denies(s)) for q, s in texts], number=5) / (5 * len(texts))
    print(
        f"per question: {seconds * 1e6:.1f} µs as the signal reads them, {most * 1e6:.1f} µs with the sentence always read"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", type=Path, nargs="?", help="A benchmark folder (passages.jsonl, questions.jsonl)."
    )
    parser.add_argument("--scenario", action="store_true", help="Ask the questions over documents/ instead.")
    args = parser.parse_args()
    if args.scenario:
        ask_over_documents(SCENARIO)
    elif args.folder:
        negations(args.folder)
    else:
        parser.error("give a benchmark folder, or --scenario")


if __name__ == "__main__":
    main()
