"""Compare two `issqa eval --answers` files question by question: what one run lost and the other gained.

Aggregates hide trades: two runs with the same answer-hit rate can differ on dozens of questions. This
prints, per group (single, follow-up, unanswerable) and per the data's own kinds, how many questions
each run got right and how many changed each way, and with `--show` the questions that changed, so a
change can be judged by what it does. Right means an answer-level hit for an answerable question and
a refusal for an unanswerable one, so a row that mixes both (`all`) is not `issqa eval`'s hit rate.

    issqa eval FOLDER --answers before.jsonl          # in the old checkout
    issqa eval FOLDER --answers after.jsonl           # in the new one
    python bench/compare_answers.py before.jsonl after.jsonl --show 5
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.evaluation import read_questions

Pair = tuple[dict[str, Any], dict[str, Any]]


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, dict[str, list[Pair]]]:
    """Per group and kind: the pairs each run got right in both, lost, gained, or missed in both."""
    if [q["question"] for q in before] != [q["question"] for q in after]:
        raise ValueError("the two files do not hold the same questions in the same order")
    out: dict[str, dict[str, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for a, b in zip(before, after, strict=True):
        good = "refused" if a["impossible"] else "hit"
        was, now = a[good], b[good]
        state = "kept" if was and now else "lost" if was else "gained" if now else "missed"
        for kind in dict.fromkeys(["all", a["group"], a["kind"]]):
            out[kind][state].append((a, b))
    return out


def report(table: dict[str, dict[str, list[Pair]]]) -> str:
    """One row per group and kind: questions, the share right before and after, lost and gained (each
    split into those whose draft changed and those whose same draft crossed the threshold), and the
    drafts that changed and that hold a gold answer before and after."""
    lines = [
        f"{'kind':16} {'n':>5} {'before':>7} {'after':>7} {'lost':>11} {'gained':>11} "
        f"{'drafts changed':>14} {'drafts right':>13}"
    ]
    for kind, states in sorted(table.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        pairs = [pair for v in states.values() for pair in v]
        n = len(pairs)
        before = len(states["kept"]) + len(states["lost"])
        after = len(states["kept"]) + len(states["gained"])
        changed = sum(a["draft"] != b["draft"] for a, b in pairs)
        right = f"{sum(a['right'] for a, _ in pairs)}→{sum(b['right'] for _, b in pairs)}"
        lines.append(
            f"{kind:16} {n:>5} {before / n:7.3f} {after / n:7.3f} {_split(states['lost']):>11} "
            f"{_split(states['gained']):>11} {changed:>14} {right:>13}"
        )
    lines.append(
        "(right: an answer-level hit, or for an unanswerable question a refusal; lost and gained as"
        " total (new draft + same draft across the threshold))"
    )
    return "\n".join(lines)


def _split(pairs: list[Pair]) -> str:
    redrafted = sum(a["draft"] != b["draft"] for a, b in pairs)
    return f"{len(pairs)} ({redrafted}+{len(pairs) - redrafted})"


def examples(table: dict[str, dict[str, list[Pair]]], show: int) -> str:
    """Up to `show` lost and `show` gained questions, with both runs' drafts and confidences."""
    lines = []
    for state in ("lost", "gained"):
        for a, b in table["all"][state][:show]:
            lines.append(f"\n{state}: [{a['kind']}] {a['question']}   gold {a['answers'][:2]}")
            for label, r in (("before", a), ("after", b)):
                said = "refused" if r["refused"] else "answered"
                lines.append(f"  {label:6} {said} at {r['confidence']:.3f}: {r['draft'][:160]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print this many lost and gained questions")
    args = parser.parse_args(argv)
    try:
        table = changes(read_questions(args.before), read_questions(args.after))
    except ValueError as e:
        print(f"compare_answers: {e}", file=sys.stderr)
        return 1
    print(report(table))
    if args.show:
        print(examples(table, args.show))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
