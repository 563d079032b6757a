"""What `Engine.ask` adds to the model, split: the work around it alone, and what the two cost together.

Alternates, question by question (cache off unless said): the model and the FAISS search alone (as
bench/perf.py's baseline), `Engine.ask` with the question's vector already cached (retrieval and answer
only), and the whole `Engine.ask`. When the whole ask costs more than the first two added up, the
difference is the two halves slowing each other down (each leaves the other's data out of the CPU
caches), not work that can be removed. The whole ask's own model call is timed too (`_forward`), so
the second line of each round says where that difference lies: in the model, or in the work after it.

    nice .venv/bin/python bench/ask_overhead.py ../shared/benchmarks/squad-v1.1-dev [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from perf import sample_app  # noqa: E402

from service import embedding, get_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="model threads (default: every core)")
    args = parser.parse_args()
    if args.threads:
        embedding.set_threads(args.threads)
    with sample_app(args.benchmark, args.passages, args.questions) as (app, questions):
        engine = get_engine(app)
        embedder, vectors = engine.embedder, engine.index()._faiss
        for q in questions[:20]:
            engine.ask(q)
        forward, calls = embedder._forward, []

        def timed_forward(texts: list[str], show_progress: bool = False, start: Any = None) -> Any:
            started = time.perf_counter()
            try:
                return forward(texts, show_progress, start)
            finally:
                calls.append(time.perf_counter() - started)

        embedder._forward = timed_forward  # type: ignore[method-assign]
        median = statistics.median
        for _ in range(args.rounds):
            model, around, whole, inside = [], [], [], []
            for q in questions:
                embedder.cache_size = 0
                started = time.perf_counter()
                vectors.search(embedder._forward([q]), 10)
                model.append(time.perf_counter() - started)
                started = time.perf_counter()
                engine.ask(q)
                whole.append(time.perf_counter() - started)
                inside.append(calls[-1])
                embedder.cache_size = 1024
                engine.ask(q)  # caches its vector
                started = time.perf_counter()
                engine.ask(q)
                around.append(time.perf_counter() - started)
            m, a, w = median(model) * 1000, median(around) * 1000, median(whole) * 1000
            own = median(inside) * 1000
            after = median(t - i for t, i in zip(whole, inside, strict=True)) * 1000
            print(
                f"p50: model + FAISS {m:.2f} ms; Engine.ask, vector cached {a:.2f} ms; Engine.ask {w:.2f} ms "
                f"= {w / m:.2f}x the model; together they cost {w - m - a:+.2f} ms more than apart\n"
                f"     inside Engine.ask: its model call {own:.2f} ms, the rest {after:.2f} ms "
                f"({after / a:.2f}x the same work with the vector cached)",
                flush=True,
            )


if __name__ == "__main__":
    main()
