"""Why questions in flight together share a forward pass: questions/s of the model by batch size.

Encodes the same SQuAD questions one at a time, then in pairs, fours and eights, with one model
thread (what a server worker has on a two-core machine), all in one run, with the configured backend
(ISSQA_BACKEND: onnx by default, or torch) and question model (ISSQA_QUESTION_PRECISION). The embedder's leader/follower batching
(`embedding._Batching._encode`) rests on these figures.

    .venv/bin/python bench/question_batches.py ../shared/benchmarks/squad-v1.1-dev [--questions 128]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.embedding import load_embedder
from service.serving import set_torch_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--questions", type=int, default=128)
    args = parser.parse_args()

    set_torch_threads(1)
    embedder = load_embedder()  # its model call alone (`_forward`): no cache, no queue
    if getattr(embedder, "question_precision", "fp32") == "int8":
        # int8 questions run one at a time (a batch's range scales each activation, so a vector would
        # depend on its batch); batched here anyway, to show what batching them would gain.
        embedder._question_batch = embedder.batch_size  # type: ignore[union-attr]
    lines = (args.folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines[: args.questions]]
    embedder._forward(questions[:8])  # warm up
    single = None
    for size in (1, 2, 4, 8):
        started = time.perf_counter()
        for i in range(0, len(questions), size):
            embedder._forward(questions[i : i + size])
        rate = len(questions) / (time.perf_counter() - started)
        single = single or rate
        print(f"batches of {size}: {rate:6.1f} questions/s  ({rate / single:.2f}x one at a time)")


if __name__ == "__main__":
    main()
