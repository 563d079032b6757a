"""What a cross-encoder confidence (issue 12, option b) would cost on this machine, before training one.

A cross-encoder reads the question and a candidate answer sentence together through the transformer,
so each answer costs one more forward pass over both texts, and training it means backward passes
over thousands of such pairs. This prints, in one run over real SQuAD questions and the sentences
that answer them:

- serving: the shipped model's ONNX session (the same transformer a fine-tuned cross-encoder would
  be) on the question alone, as every ask does now, against the question and its answer sentence
  together, the one pass a cross-encoder would add per answer;
- training: seconds per optimiser step of the packaged MiniLM fine-tuned (torch, AdamW, batches of
  16 pairs), and what one epoch over 10,000 pairs would take at that rate.

    .venv/bin/python bench/cross_encoder_cost.py ../shared/benchmarks/squad-v1.1-dev [--pairs 200] [--steps 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.chunking import sentences
from service.embedding import DEFAULT_MODEL, load_embedder, load_sentence_transformer
from service.evaluation import read_questions

EPOCH_PAIRS = 10_000
BATCH = 16


def pairs(folder: Path, count: int) -> list[tuple[str, str]]:
    """(question, the sentence of its gold passage that holds a gold answer), for `count` questions."""
    passages = {p["pid"]: p["text"] for p in read_questions(folder / "passages.jsonl")}
    found = []
    for q in read_questions(folder / "questions.jsonl"):
        text = passages[q["gold_pid"]]
        holding = [text[a:b] for a, b in sentences(text) if any(x in text[a:b] for x in q["answers"])]
        if holding:
            found.append((q["question"], holding[0]))
        if len(found) == count:
            break
    return found


def p50(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    found = pairs(args.folder, args.pairs)

    onnx = load_embedder(DEFAULT_MODEL, "onnx")
    for question, sentence in found[:10]:
        onnx._forward([question])
        onnx._forward([f"{question} [SEP] {sentence}"])
    alone, together = [], []
    for question, sentence in found:
        started = time.perf_counter()
        onnx._forward([question])
        alone.append(time.perf_counter() - started)
        started = time.perf_counter()
        onnx._forward([f"{question} [SEP] {sentence}"])
        together.append(time.perf_counter() - started)
    print(f"{len(found)} (question, answer sentence) pairs from {args.folder.name}")
    print(
        f"serving, ONNX: question alone p50 {p50(alone):.1f} ms; question and sentence p50 {p50(together):.1f} ms"
    )
    print(
        f"   a cross-encoder pass adds {p50(together):.1f} ms per answer ({p50(together) / p50(alone):.2f}x the question's encode)"
    )

    import torch  # the training half only: serving never imports it

    model = load_sentence_transformer(DEFAULT_MODEL)
    transformer, tokenizer = model[0].auto_model, model.tokenizer
    head = torch.nn.Linear(transformer.config.hidden_size, 1)
    optimiser = torch.optim.AdamW([*transformer.parameters(), *head.parameters()], lr=3e-5)
    transformer.train()
    steps = []
    for step in range(args.steps + 1):
        batch = found[(step * BATCH) % len(found) :][:BATCH]
        inputs = tokenizer(
            [q for q, _ in batch],
            [s for _, s in batch],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        labels = torch.tensor([float(i % 2) for i in range(len(batch))])
        started = time.perf_counter()
        logits = head(transformer(**inputs).last_hidden_state[:, 0]).squeeze(-1)
        torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).backward()
        optimiser.step()
        optimiser.zero_grad()
        if step:  # the first step allocates
            steps.append(time.perf_counter() - started)
    per_step = statistics.median(steps)
    print(
        f"training, torch {torch.get_num_threads()} threads: {per_step:.2f} s per step of {BATCH} pairs; "
        f"one epoch of {EPOCH_PAIRS:,} pairs {per_step * EPOCH_PAIRS / BATCH / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
