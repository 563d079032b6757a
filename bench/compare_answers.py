"""Compare two `issqa eval --answers` files question by question: what one run lost and the other gained.

Aggregates hide trades: two runs with the same answer-hit rate can differ on dozens of questions. This
prints, per kind of question, the answer hits and refusals of each run and how many changed each way,
and with `--show` the questions that changed, so a change can be judged by what it does.

    issqa eval FOLDER --answers before.jsonl          # in the old checkout
    issqa eval FOLDER --answers after.jsonl           # in the new one
    python bench/compare_answers.py before.jsonl after.jsonl --show 5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Per kind: the pairs whose hit (answerable) or refusal (unanswerable) was lost, gained or kept."""
    if [q["question"] for q in before] != [q["question"] for q in after]:
        raise SystemExit("the two files do not hold the same questions in the same order")
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for a, b in zip(before, after, strict=True):
        good = "refused" if a["impossible"] else "hit"  # what counts as right for this question
        was, now = a[good], b[good]
        state = "kept" if was and now else "lost" if was else "gained" if now else "missed"
        for kind in dict.fromkeys(["all", a["kind"]]):
            out[kind][state].append((a, b))
    return out


def report(table: dict[str, dict[str, list]]) -> str:
    lines = [
        f"{'kind':14} {'n':>5} {'before':>7} {'after':>7} {'lost':>5} {'gained':>6}   (hits; refusals for unanswerable)"
    ]
    for kind, states in sorted(table.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        n = sum(len(v) for v in states.values())
        before = len(states["kept"]) + len(states["lost"])
        after = len(states["kept"]) + len(states["gained"])
        lines.append(
            f"{kind:14} {n:>5} {before / n:7.3f} {after / n:7.3f} {len(states['lost']):>5} {len(states['gained']):>6}"
        )
    return "\n".join(lines)


def examples(table: dict[str, dict[str, list]], show: int) -> str:
    lines = []
    for state in ("lost", "gained"):
        for a, b in table["all"][state][:show]:
            lines.append(f"\n{state}: [{a['kind']}] {a['question']}   gold {a['answers'][:2]}")
            for label, r in (("before", a), ("after", b)):
                said = "refused" if r["refused"] else "answered"
                lines.append(f"  {label:6} {said} at {r['confidence']:.3f}: {r['answer'][:160]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print this many lost and gained questions")
    args = parser.parse_args(argv)
    table = changes(read(args.before), read(args.after))
    print(report(table))
    if args.show:
        print(examples(table, args.show))


if __name__ == "__main__":
    main(sys.argv[1:])
