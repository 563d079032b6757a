"""Names spelled another way: what `query.respell` changes over a benchmark, what it costs, and the
issue's scenario over `documents/` in both spellings (docs/benchmarks.md, section 12).

    .venv/bin/python bench/respellings.py ../shared/benchmarks/squad-v1.1-dev [--limit 2000]
    .venv/bin/python bench/respellings.py --scenario

The first lists every word respelled in the benchmark's questions (over its own index, the real
model) with how often, and times `respell` per question (first time, then cached) against the
model call alone. The second asks the scenario's conversations over `documents/` and prints each
answer's confidence (`ask_over_documents`, which bench/negations.py uses too); it uses only
`create_app` and `Engine.ask`, so it runs in a checkout of any earlier commit too (the "before"
figures).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import create_app, get_engine  # noqa: E402
from service.evaluation import benchmark_engine, read_questions  # noqa: E402

# Conversations of the scenario: each inner list is asked in order, with the history so far.
SCENARIO = [
    ["Who was dismissed as head of Roscosmos in July 2022?", "Who replaced him?"],
    ["Who was dismissed as head of Roskosmos in July 2022?", "Who replaced him?"],
    ["What did Krikalyov say?"],
    ["What did Krikalev say?"],
    ["Who was the boss of Roscosmos before Borisov?"],
    ["Who was the boss of Roskosmos before Borisov?"],
]


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[int(share * (len(values) - 1))] * 1000


def respellings(folder: Path, limit: int) -> None:
    from service.query import _SPELLABLE, respell  # the installed code's, not an earlier checkout's

    with benchmark_engine(folder, {}) as (engine, _):
        index, embedder = engine.index(), engine.embedder

        def known(word: str) -> bool:
            return embedder.count_tokens(word) == 1

        questions = [q["question"] for q in read_questions(folder / "questions.jsonl")]
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        changed, first = 0, []
        for question in questions:
            started = time.perf_counter()
            spelled = respell(index, question, known)
            first.append(time.perf_counter() - started)
            if spelled != question:
                changed += 1
                pairs.update(
                    (a, b)
                    for a, b in zip(_SPELLABLE.findall(question), _SPELLABLE.findall(spelled), strict=False)
                    if a != b
                )
        again = []
        for question in questions[:limit]:
            started = time.perf_counter()
            respell(index, question, known)
            again.append(time.perf_counter() - started)
        model = []
        for question in questions[: min(limit, 300)]:
            started = time.perf_counter()
            embedder.encode([question])
            model.append(time.perf_counter() - started)
    print(f"{changed} of {len(questions)} questions respelled; {len(pairs)} distinct pairs")
    for (a, b), n in sorted(pairs.items(), key=lambda item: item[0][0].lower()):
        print(f"  {a} -> {b} ({n})")
    print(
        f"respell per question: first time p50 {percentile(first, 0.5):.3f} ms, p99 {percentile(first, 0.99):.3f} ms; "
        f"cached p50 {percentile(again, 0.5):.3f} ms; the model call alone p50 {percentile(model, 0.5):.2f} ms"
    )


def ask_over_documents(conversations: list[list[str]]) -> None:
    """Ask each conversation over `documents/`, in order with its history, and print every answer's confidence."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DOCUMENTS": str(ROOT / "documents"), "INDEX": tmp})
        engine = get_engine(app)
        engine.build()
        for conversation in conversations:
            history: list[dict[str, str]] = []
            for question in conversation:
                reply = engine.ask(question, history=history)
                shown = reply.answer if reply.answered else "(refused)"
                print(
                    f"{reply.confidence:.3f} {'answered' if reply.answered else 'refused '}  {question}  {shown[:90]}"
                )
                history += [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": reply.answer},
                ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", type=Path, nargs="?", help="A benchmark folder (passages.jsonl, questions.jsonl)."
    )
    parser.add_argument("--limit", type=int, default=2000, help="Questions timed again, cached.")
    parser.add_argument("--scenario", action="store_true", help="Ask the scenario over documents/ instead.")
    args = parser.parse_args()
    if args.scenario:
        ask_over_documents(SCENARIO)
    elif args.folder:
        respellings(args.folder, args.limit)
    else:
        parser.error("give a benchmark folder, or --scenario")


if __name__ == "__main__":
    main()
