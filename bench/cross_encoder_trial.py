"""A trial of issue 12's option (b): the packaged MiniLM fine-tuned as a cross-encoder over (question,
drafted answer), measured against and beside the shipped logistic confidence on held-out articles.

Not shipped: one pass costs about twice the confidence's 5 ms budget here (bench/cross_encoder_cost.py).
This measures what it would buy, so the next round knows whether to pursue it on a larger machine.

1. `drafts`: asks the `removed` and `v2` question sets of bench/train_confidence.py through the real
   pipeline (analyse -> search -> draft, as /api/ask) and keeps each question, its drafted answer
   (markers stripped) and whether it is right, in `--work`.
2. `train`: fine-tunes the model (mean pooling and a linear head, binary cross-entropy, AdamW, fixed
   seeds) on the drafts of the articles of folds 1-4 (`train_confidence.fold_of`), for `--epochs`.
3. `evaluate`: on fold 0's articles, compares the logistic model's out-of-fold probability (from the
   committed signals), the cross-encoder's and their mean: ROC AUC of "right", and per set the
   refusal recall at the thresholds that keep 0.85 and 0.92 of the answerable questions answered
   (chosen on that fold itself, so optimistic for all three alike).

    .venv/bin/python bench/cross_encoder_trial.py ../shared/benchmarks --work /tmp/issqa-ce
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import train_confidence as tc  # noqa: E402

from service.embedding import DEFAULT_MODEL, load_sentence_transformer  # noqa: E402

SETS = ("removed", "v2")
MARKER = re.compile(r"\s*\[\d+\]")
BATCH = 16
MAX_TOKENS = 128
KEEP = (0.85, 0.92)


def drafts(benchmarks: Path, work: Path) -> None:
    """Draft an answer to every question of the chosen sets and store it with its label."""
    rows = [
        {
            "dataset": name,
            "qid": q["qid"],
            "title": q["title"],
            "answerable": int(q["answerable"]),
            "right": int(right),
            "question": q["question"],
            "answer": MARKER.sub("", found.text),
        }
        for name, passages, questions in tc.question_sets(benchmarks)
        if name in SETS
        for q, found, right in tc.drafts(name, passages, questions)
    ]
    for name in SETS:
        print(f"{name}: {sum(r['dataset'] == name for r in rows)} drafts", flush=True)
    (work / "drafts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _model():
    import torch

    model = load_sentence_transformer(DEFAULT_MODEL)
    head = torch.nn.Linear(model[0].auto_model.config.hidden_size, 1)
    return model[0].auto_model, model.tokenizer, head


def _logits(transformer, tokenizer, head, batch: list[dict]):

    inputs = tokenizer(
        [r["question"] for r in batch],
        [r["answer"] for r in batch],
        padding=True,
        truncation="only_second",
        max_length=MAX_TOKENS,
        return_tensors="pt",
    )
    tokens = transformer(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    pooled = (tokens * mask).sum(1) / mask.sum(1)
    return head(pooled).squeeze(-1)


def train(work: Path, epochs: int) -> None:
    """Fine-tune on folds 1-4 and store the cross-encoder's probability for every fold-0 draft."""
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    rows = [json.loads(line) for line in (work / "drafts.jsonl").read_text().splitlines()]
    training = [r for r in rows if tc.fold_of(r["title"]) != 0]
    held_out = [r for r in rows if tc.fold_of(r["title"]) == 0]
    transformer, tokenizer, head = _model()
    parameters = [*transformer.parameters(), *head.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=3e-5, weight_decay=0.01)
    steps = epochs * ((len(training) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / (0.1 * steps)))
    started = time.perf_counter()
    transformer.train()
    for epoch in range(epochs):
        order = random.Random(epoch).sample(training, len(training))
        total = 0.0
        for i in range(0, len(order), BATCH):
            batch = order[i : i + BATCH]
            labels = torch.tensor([float(r["right"]) for r in batch])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                _logits(transformer, tokenizer, head, batch), labels
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            total += loss.item() * len(batch)
        print(
            f"epoch {epoch + 1}: loss {total / len(order):.4f} "
            f"({time.perf_counter() - started:.0f} s, {len(training)} pairs)",
            flush=True,
        )
    transformer.eval()
    scores = {}
    with torch.inference_mode():
        for i in range(0, len(held_out), 64):
            batch = held_out[i : i + 64]
            for r, p in zip(
                batch, torch.sigmoid(_logits(transformer, tokenizer, head, batch)).tolist(), strict=True
            ):
                scores[f"{r['dataset']}/{r['qid']}"] = p
    (work / "cross_encoder.json").write_text(json.dumps(scores))


def evaluate(work: Path) -> None:
    """Compare logistic, cross-encoder and their mean on the held-out fold."""
    from sklearn.metrics import roc_auc_score

    data = tc.read_signals()
    logistic = dict(
        zip(
            (f"{d}/{q}" for d, q in zip(data["dataset"], data["qid"], strict=True)),
            tc.out_of_fold(data, "logistic"),
            strict=True,
        )
    )
    cross = json.loads((work / "cross_encoder.json").read_text())
    rows = [json.loads(line) for line in (work / "drafts.jsonl").read_text().splitlines()]
    rows = [
        r for r in rows if f"{r['dataset']}/{r['qid']}" in cross and f"{r['dataset']}/{r['qid']}" in logistic
    ]
    print(f"held-out fold 0: {len(rows)} drafts over {len({r['title'] for r in rows})} articles")
    for name in SETS:
        group = [r for r in rows if r["dataset"] == name]
        keys = [f"{r['dataset']}/{r['qid']}" for r in group]
        right = np.array([r["right"] for r in group])
        answerable = np.array([r["answerable"] for r in group]) == 1
        scores = {
            "logistic (shipped)": np.array([logistic[k] for k in keys]),
            "cross-encoder": np.array([cross[k] for k in keys]),
        }
        scores["mean of both"] = (scores["logistic (shipped)"] + scores["cross-encoder"]) / 2
        print(f"\n{name}: {len(group)} drafts, {int((~answerable).sum())} unanswerable")
        for label, score in scores.items():
            cells = []
            for keep in KEEP:
                threshold = np.quantile(score[answerable], 1 - keep)
                refused = (
                    float((score[~answerable] < threshold).mean()) if (~answerable).any() else float("nan")
                )
                cells.append(f"refused at {keep:.2f} answered {refused:.3f}")
            print(f"  {label:20s} AUC(right) {roc_auc_score(right, score):.3f}   " + "   ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="folder for the drafts and scores")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", nargs="*", default=["drafts", "train", "evaluate"])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if "drafts" in args.steps:
        drafts(args.benchmarks, args.work)
    if "train" in args.steps:
        train(args.work, args.epochs)
    if "evaluate" in args.steps:
        evaluate(args.work)


if __name__ == "__main__":
    main()
