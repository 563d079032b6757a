"""Does the backend change what is retrieved? Recall@1/5 through `Engine.ask`, torch vs onnx questions.

The first `--passages` passages of a benchmark folder are indexed once by torch (the real pipeline,
in a temporary folder: an index either backend may serve) and every question
whose gold passage is among them goes through `Engine.ask` (the code behind `/api/ask`) once per
backend and retrieval mode. Printed: Recall@1 and Recall@5 of the gold passage, the share of
questions whose first citation is the same passage under both backends, and the lowest cosine
between the two backends' question vectors. No timings (bench/perf.py measures those).

    nice .venv/bin/python bench/onnx_questions.py ../shared/benchmarks/squad-v1.1-dev --passages 400
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.answer import Answer  # noqa: E402
from service.embedding import load_embedder  # noqa: E402
from service.engine import Engine  # noqa: E402
from service.evaluation import benchmark_engine, read_questions  # noqa: E402

BACKENDS = ("torch", "onnx")


def subset(benchmark: Path, passages: int, folder: Path) -> list[dict[str, Any]]:
    """Write the first `passages` passages into `folder`; return the answerable questions on them."""
    lines = (benchmark / "passages.jsonl").read_text(encoding="utf-8").splitlines()[:passages]
    (folder / "passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pids = {json.loads(line)["pid"] for line in lines}
    questions = read_questions(benchmark / "questions.jsonl")
    return [q for q in questions if q["gold_pid"] in pids and not q.get("is_impossible")]


def gold_rank(answer: Answer, gold: str, by_path: dict[str, str]) -> int | None:
    """1-based position of the first citation inside the gold passage, or None."""
    cited = [by_path.get(c.path) for c in answer.citations]
    return next((i for i, pid in enumerate(cited, 1) if pid == gold), None)


def first_citation(answer: Answer) -> tuple[str, int, int] | None:
    return (
        (answer.citations[0].path, answer.citations[0].start, answer.citations[0].end)
        if answer.citations
        else None
    )


def question_cosines(model: str, questions: list[str], batch: int = 64) -> np.ndarray:
    """Cosine between the torch and the onnx vector of each question."""
    onnx, torch = load_embedder(model, "onnx"), load_embedder(model, "torch")
    out = []
    for b in range(0, len(questions), batch):
        texts = questions[b : b + batch]
        out.append(np.sum(torch._forward(texts) * onnx._forward(texts), axis=1))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--modes", default="hybrid,dense", help="retrieval modes, comma-separated")
    args = parser.parse_args()
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        questions = subset(args.benchmark, args.passages, Path(tmp))
        with benchmark_engine(Path(tmp), {"BACKEND": "torch"}) as (built, by_path):
            print(f"passages: {args.passages} ({built.index().manifest.passages} after chunking)")
            print(f"questions: {len(questions)} (gold passage among them)")
            cosines = question_cosines(built.settings.model, [q["question"] for q in questions])
            print(
                f"question vectors, onnx against torch: min cosine {cosines.min():.7f}, "
                f"mean {cosines.mean():.7f}, below 0.9999: {int((cosines < 0.9999).sum())}"
            )
            print("\n| retrieval | backend | Recall@1 | Recall@5 | same top-1 citation as torch |")
            print("|---|---|---|---|---|")
            for mode in modes:
                firsts: dict[str, list[Any]] = {}
                for backend in BACKENDS:
                    engine = Engine(replace(built.settings, backend=backend, retrieval=mode))
                    ranks, firsts[backend] = [], []
                    for q in questions:
                        answer = engine.ask(q["question"], top_k=5)
                        ranks.append(gold_rank(answer, q["gold_pid"], by_path))
                        firsts[backend].append(first_citation(answer))
                    r1 = np.mean([r == 1 for r in ranks])
                    r5 = np.mean([r is not None and r <= 5 for r in ranks])
                    same = np.mean([a == b for a, b in zip(firsts["torch"], firsts[backend], strict=True)])
                    print(f"| {mode} | {backend} | {r1:.4f} | {r5:.4f} | {same:.2%} |")


if __name__ == "__main__":
    main()
