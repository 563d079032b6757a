"""Should the ONNX model be quantised to int8? The whole of squad-v1.1-dev, end to end, fp32 against int8.

onnxruntime's dynamic quantisation (`quantize_dynamic`, int8 weights) of iss-qa's own fp32 export,
run through the real pipeline: `issqa eval`'s `evaluate` indexes every passage and asks every question
once with the fp32 model and once with the int8 one (passages and questions both: an index must
hold one model's vectors). Prints Recall@1/5, answer hit rate, the in-process question latency
(p50), the build time and the file sizes. The rule (issue 13): adopt int8 only if R@1 and the answer
hit rate each drop by at most 0.005.

    nice .venv/bin/python bench/onnx_int8.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import embedding  # noqa: E402
from service import engine as engine_module  # noqa: E402
from service.evaluation import evaluate  # noqa: E402

MAX_DROP = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = embedding.OnnxEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = Path(tmp) / "model-int8.onnx"
        quantize_dynamic(str(fp32.onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        int8 = embedding.OnnxEmbedder()
        int8._session = embedding.onnx_session(int8_path)
        sizes = {"fp32": fp32.onnx_path.stat().st_size, "int8": int8_path.stat().st_size}
        results = {}
        for name, model in (("fp32", fp32), ("int8", int8)):
            engine_module.load_embedder = lambda *_, model=model: model  # type: ignore[assignment]
            results[name] = evaluate(args.benchmark)
    print(f"squad-v1.1-dev: {results['fp32']['passages']} passages, {results['fp32']['questions']} questions")
    print("| model | file | R@1 | R@5 | answer hit rate | question p50 | build |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| onnx {name} | {sizes[name] / 2**20:.0f} MiB | {r['recall@1']:.4f} | {r['recall@5']:.4f} | "
            f"{r['answer_hit_rate']:.4f} | {r['latency_ms']['p50']:.1f} ms | {r['build_seconds']:.0f} s |"
        )
    drops = {k: results["fp32"][k] - results["int8"][k] for k in ("recall@1", "answer_hit_rate")}
    verdict = "adopt" if all(d <= MAX_DROP for d in drops.values()) else "do not adopt"
    print(
        f"drop with int8: R@1 {drops['recall@1']:+.4f}, answer hit rate {drops['answer_hit_rate']:+.4f} "
        f"(limit {MAX_DROP}): {verdict}"
    )


if __name__ == "__main__":
    main()
