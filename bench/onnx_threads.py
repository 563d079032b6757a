"""ONNX session threads for one question: intra-op threads 1 or 2, with and without spinning.

Each configuration is a separate onnxruntime session over the same export; they alternate question
by question, so load from other work hits them alike. Prints p50/p95 of one question's encode
(tokenise, run, pool) and the throughput of batches of 8.

    nice .venv/bin/python bench/onnx_threads.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import embedding  # noqa: E402


def session(path: Path, threads: int, spinning: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    lines = (args.benchmark / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines[: args.questions]]
    embedder = embedding.OnnxEmbedder(cache_size=0, question_precision="fp32")  # the export itself
    configs = {
        f"{t} thread{'s' * (t > 1)}, spinning {'on' if s else 'off'}": (t, s)
        for t in (1, 2)
        for s in (True, False)
    }
    sessions = {name: session(embedder.onnx_path, *config) for name, config in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    batch_times: dict[str, float] = dict.fromkeys(sessions, 0.0)
    for q in questions[:10]:
        for s in sessions.values():
            embedder._session = embedder._question_session = s
            embedder._forward([q])
    for i, q in enumerate(questions):
        for name, s in sessions.items():
            embedder._session = embedder._question_session = s
            t = time.perf_counter()
            embedder._forward([q])
            times[name].append(time.perf_counter() - t)
            if i % 8 == 0:
                t = time.perf_counter()
                embedder._forward(questions[i : i + 8])
                batch_times[name] += time.perf_counter() - t
    batched = len(range(0, len(questions), 8)) * 8
    for name in sessions:
        p = np.percentile(np.array(times[name]) * 1000, [50, 95])
        print(
            f"{name:28s} one question p50 {p[0]:6.1f} ms  p95 {p[1]:6.1f} ms   batches of 8: {batched / batch_times[name]:6.1f} questions/s"
        )


if __name__ == "__main__":
    main()
