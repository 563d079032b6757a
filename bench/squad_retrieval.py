"""Measure retrieval and answers on a SQuAD-format folder through iss-qa's real pipeline.

Every passage becomes a document file (title in its front matter) in a temporary folder, which is
indexed like `documents/`; every question goes through `Engine.ask`, the code behind `/api/ask`.
Prints Recall@1/5/10 and MRR@10 of the gold passage among the citations, the answer hit rate (a gold
answer string inside the answer text, over questions whose gold passage is cited first), refusal
figures where questions are marked `is_impossible`, and latency percentiles.

    .venv/bin/python bench/squad_retrieval.py ../shared/benchmarks/squad-v1.1-dev [--limit N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.engine import DEFAULTS, Engine, Settings


def write_corpus(folder: Path, passages_file: Path) -> dict[str, str]:
    """One file per passage; returns document path -> passage id."""
    by_path = {}
    for line in passages_file.read_text(encoding="utf-8").splitlines():
        p = json.loads(line)
        title, _, number = p["pid"].rpartition("#")
        rel = f"{title}/{number}.txt"
        (folder / title).mkdir(parents=True, exist_ok=True)
        front = json.dumps(p["title"].replace("_", " "))
        (folder / rel).write_text(f"---\ntitle: {front}\n---\n{p['text']}", encoding="utf-8")
        by_path[rel] = p["pid"]
    return by_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, help="ask a random sample of this many questions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--min-score", type=float, default=DEFAULTS["MIN_SCORE"])
    args = parser.parse_args()

    questions = [json.loads(x) for x in (args.folder / "questions.jsonl").read_text().splitlines()]
    if args.limit:
        questions = random.Random(0).sample(questions, min(args.limit, len(questions)))

    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "documents", Path(tmp) / "index"
        by_path = write_corpus(docs, args.folder / "passages.jsonl")
        config = {**DEFAULTS, "DOCUMENTS": docs, "INDEX": index, "MIN_SCORE": args.min_score}
        engine = Engine(Settings.from_config(config))
        started = time.perf_counter()
        report = engine.build()
        build_s = time.perf_counter() - started
        engine.ask("warm-up question")

        ranks, hits_at_1, answer_hits, latencies = [], 0, 0, []
        refusals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        for q in questions:
            started = time.perf_counter()
            answer = engine.ask(q["question"], top_k=10)
            latencies.append((time.perf_counter() - started) * 1000)
            impossible = q.get("is_impossible", False)
            refused = not answer.answered
            key = ("tp" if refused else "fn") if impossible else ("fp" if refused else "tn")
            refusals[key] += 1
            if impossible:
                continue
            cited = [by_path[c.path] for c in answer.citations]
            rank = next((i for i, pid in enumerate(cited, 1) if pid == q["gold_pid"]), None)
            ranks.append(rank)
            if rank == 1:
                hits_at_1 += 1
                text = answer.answer.lower()
                answer_hits += any(a.lower() in text for a in q["answers"])

    n = len(ranks)
    figures = {
        "passages": report.passages,
        "documents": report.documents,
        "questions": len(questions),
        "answerable": n,
        "recall@1": sum(r == 1 for r in ranks if r) / n,
        "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
        "recall@10": sum(1 for r in ranks if r and r <= 10) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
        "answer_hit_rate_when_gold_first": answer_hits / hits_at_1 if hits_at_1 else 0.0,
        "answered_rate_answerable": refusals["tn"] / max(1, refusals["tn"] + refusals["fp"]),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "latency_ms_p99": float(np.percentile(latencies, 99)),
        "build_seconds": build_s,
    }
    if refusals["tp"] + refusals["fn"]:
        figures["refusal_precision"] = refusals["tp"] / max(1, refusals["tp"] + refusals["fp"])
        figures["refusal_recall"] = refusals["tp"] / (refusals["tp"] + refusals["fn"])
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:34} {value:.3f}" if isinstance(value, float) else f"{key:34} {value}")


if __name__ == "__main__":
    main()
