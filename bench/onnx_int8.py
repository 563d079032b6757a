"""Is an int8 ONNX copy of the model worth it? Question latency and dense Recall@5 against torch.

sentence-transformers' own ONNX backend needs `optimum-onnx`, which pins transformers below 4.58
(iss-qa runs 5.x), so this script exports the same model with `torch.onnx.export` from the packaged
folder (offline), quantises it with onnxruntime's dynamic int8 quantisation, and pools it exactly as
the model does (mean over tokens, then L2 normalisation). It needs `onnxruntime` and `onnx`
importable (e.g. `pip install --target /tmp/ortlib onnxruntime onnx` and `PYTHONPATH=/tmp/ortlib`).

Figures, all from one run: question-encoding latency with one thread each (torch vs ONNX fp32 vs
ONNX int8, alternating question by question) and dense-only Recall@5 on the first `--passages`
SQuAD v1.1 dev passages (title and text, truncated at 256 word pieces for all three alike) with
their questions.

    nice .venv/bin/python bench/onnx_int8.py ../shared/benchmarks/squad-v1.1-dev --passages 400
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.embedding import load_embedder  # noqa: E402


def export(model, folder: Path) -> tuple[Path, Path]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    bert = model[0].auto_model.eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    features = model.tokenize(["an example question", "a second, longer example sentence here"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    inputs = tuple(features[n] for n in names)
    fp32 = folder / "model.onnx"
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}
    with torch.no_grad():
        torch.onnx.export(
            Wrapped(),
            inputs,
            str(fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    int8 = folder / "model-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return fp32, int8


class OnnxEncoder:
    def __init__(self, path: Path, tokenizer, max_length: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for b in range(0, len(texts), batch_size):
            features = self.tokenizer(
                texts[b : b + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {
                k: features[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
            }
            tokens = self.session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (tokens * mask).sum(1) / mask.sum(1)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.vstack(out).astype(np.float32)


def recall_at_5(passages: np.ndarray, questions: np.ndarray, gold: list[int]) -> float:
    top = np.argsort(-(questions @ passages.T), axis=1)[:, :5]
    return float(np.mean([g in row for g, row in zip(gold, top, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--latency-questions", type=int, default=200)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # one thread each, as a server worker on this machine runs
    model = load_embedder()._model
    rows = [
        json.loads(x) for x in (args.benchmark / "passages.jsonl").read_text().splitlines()[: args.passages]
    ]
    where = {r["pid"]: i for i, r in enumerate(rows)}
    qs = [json.loads(x) for x in (args.benchmark / "questions.jsonl").read_text().splitlines()]
    qs = [q for q in qs if q["gold_pid"] in where]
    texts = [f"{r['title'].replace('_', ' ')}\n{r['text']}" for r in rows]
    questions = [q["question"] for q in qs]
    gold = [where[q["gold_pid"]] for q in qs]

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = export(model, Path(tmp))
        sizes = (fp32.stat().st_size / 2**20, int8.stat().st_size / 2**20)
        encoders = {
            "torch fp32 (current)": lambda t: model.encode(t, batch_size=32, normalize_embeddings=True),
            "onnx fp32": OnnxEncoder(fp32, model.tokenizer, model.max_seq_length).encode,
            "onnx int8": OnnxEncoder(int8, model.tokenizer, model.max_seq_length).encode,
        }
        print(f"ONNX files: fp32 {sizes[0]:.0f} MiB, int8 {sizes[1]:.0f} MiB")
        print(f"passages: {len(texts)}, questions: {len(questions)}")
        sample = questions[:: max(1, len(questions) // args.latency_questions)][: args.latency_questions]
        times: dict[str, list[float]] = {name: [] for name in encoders}
        for q in sample[:5]:
            for encode in encoders.values():
                encode([q])
        for q in sample:
            for name, encode in encoders.items():
                t = time.perf_counter()
                encode([q])
                times[name].append(time.perf_counter() - t)
        base = np.median(times["torch fp32 (current)"])
        print("\n| model | question p50 (1 thread) | ratio | dense Recall@5 | passages/s |")
        print("|---|---|---|---|---|")
        for name, encode in encoders.items():
            t = time.perf_counter()
            p = encode(texts)
            rate = len(texts) / (time.perf_counter() - t)
            r5 = recall_at_5(p, encode(questions), gold)
            p50 = np.median(times[name])
            print(f"| {name} | {p50 * 1000:.1f} ms | {p50 / base:.2f}x | {r5:.3f} | {rate:.1f} |")


if __name__ == "__main__":
    main()
