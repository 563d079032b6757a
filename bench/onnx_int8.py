"""Should the ONNX model be quantised to int8? The whole of squad-v1.1-dev, end to end, fp32 against int8.

onnxruntime's dynamic quantisation (`quantize_dynamic`, int8 weights) of iss-qa's own fp32 export,
run through the real pipeline: `issqa eval`'s `evaluate` indexes every passage and asks every question
with each variant:
- `fp32`: the export as it is (the default);
- `int8`: quantised per tensor (one scale per weight matrix), passages and questions both;
- `int8 per channel`: one scale per output column of each weight matrix, passages and questions both;
- `int8 per channel, questions only` (ISSQA_QUESTION_PRECISION=int8): passages (and their sentence
  vectors) by the fp32 export, the question by the quantised one, so the index stays as it is.
Prints Recall@1/5, answer hit rate, the in-process question latency (p50), the build time, the file
sizes and the cosine of each quantised question vector to the fp32 one. The rule (issue 13): adopt int8
only if R@1 and the answer hit rate each drop by at most 0.005.

    nice .venv/bin/python bench/onnx_int8.py ../shared/benchmarks/squad-v1.1-dev [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import embedding  # noqa: E402
from service import engine as engine_module  # noqa: E402
from service.evaluation import evaluate  # noqa: E402

MAX_DROP = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--only", default="", help="Comma-separated variant names to run (default: all).")
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = embedding.OnnxEmbedder(question_precision="fp32")
    questions = [
        json.loads(line)["question"]
        for line in (args.benchmark / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    ]
    reference = fp32._forward(questions)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"fp32": fp32.onnx_path, "int8": Path(tmp) / "int8.onnx"}
        quantize_dynamic(str(fp32.onnx_path), str(files["int8"]), weight_type=QuantType.QInt8)
        files["int8 per channel"] = embedding.int8_model_path(fp32.onnx_path)  # what iss-qa ships

        def quantised(name: str) -> embedding.OnnxEmbedder:
            model = embedding.OnnxEmbedder(question_precision="fp32")
            model._session = model._question_session = embedding.onnx_session(files[name])
            model._question_batch = 1  # as int8 questions run: dynamic quantisation scales by the batch
            return model

        variants = {
            "fp32": lambda: fp32,
            "int8": lambda: quantised("int8"),
            "int8 per channel": lambda: quantised("int8 per channel"),
            "int8 per channel, questions only": lambda: embedding.OnnxEmbedder(question_precision="int8"),
        }
        wanted = [v for v in args.only.split(",") if v] or list(variants)
        results: dict[str, dict[str, Any]] = {}
        for name in ["fp32"] + [v for v in wanted if v != "fp32"]:
            model = variants[name]()
            cosines = (model._forward(questions) * reference).sum(axis=1)
            engine_module.load_embedder = lambda *_, model=model: model  # type: ignore[assignment]
            results[name] = {**evaluate(args.benchmark), "cosine": cosines}
        sizes = {name: path.stat().st_size for name, path in files.items()}
    first = results["fp32"]
    print(f"squad-v1.1-dev: {first['passages']} passages, {first['questions']} questions")
    print(
        "| model | file | question cosine to fp32 (min / mean) | R@1 | R@5 | answer hit rate | question p50 | build |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        size = sizes["int8 per channel" if "questions only" in name else name]
        print(
            f"| {name} | {size / 2**20:.0f} MiB | {min(r['cosine']):.4f} / {statistics.mean(r['cosine']):.4f} | "
            f"{r['recall@1']:.4f} | {r['recall@5']:.4f} | {r['answer_hit_rate']:.4f} | "
            f"{r['latency_ms']['p50']:.1f} ms | {r['build_seconds']:.0f} s |"
        )
    for name, r in results.items():
        if name == "fp32":
            continue
        drops = {k: first[k] - r[k] for k in ("recall@1", "answer_hit_rate")}
        verdict = "within the rule" if all(d <= MAX_DROP for d in drops.values()) else "do not adopt"
        print(
            f"drop with {name}: R@1 {drops['recall@1']:+.4f}, answer hit rate {drops['answer_hit_rate']:+.4f} "
            f"(limit {MAX_DROP}): {verdict}"
        )


if __name__ == "__main__":
    main()
