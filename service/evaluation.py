"""Measuring iss-qa on a question set in the SQuAD-style format of `shared/benchmarks/*`.

The passages are written as documents into a temporary folder and indexed by the real pipeline; every
question goes through `Engine.ask`, the code behind `/api/ask`, history included. A hit is a cited
passage that lies inside the gold passage.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engine import DEFAULTS, Engine, Settings


@dataclass
class Tally:
    """Running counts for one group of questions."""

    ranks: list[int | None] = field(default_factory=list)
    answer_hits: int = 0
    answer_hits_gold_first: int = 0
    refusals: dict[str, int] = field(default_factory=lambda: {"tp": 0, "fp": 0, "fn": 0, "tn": 0})
    # (confidence, whether the drafted answer is right) for every question, refused ones included
    confidences: list[tuple[float, bool]] = field(default_factory=list)

    def figures(self) -> dict[str, float | int]:
        ranks = self.ranks
        n = len(ranks) or 1
        first = sum(r == 1 for r in ranks)
        out: dict[str, float | int] = {
            "answerable": len(ranks),
            "recall@1": first / n,
            "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
            "recall@10": sum(1 for r in ranks if r and r <= 10) / n,
            "mrr@10": sum(1 / r for r in ranks if r and r <= 10) / n,
            "answer_hit_rate": self.answer_hits / n,
            "answer_hit_rate_gold_first": self.answer_hits_gold_first / (first or 1),
            "answered_when_answerable": (self.refusals["tn"])
            / max(1, self.refusals["tn"] + self.refusals["fp"]),
        }
        if self.confidences:
            confidence, right = zip(*self.confidences, strict=True)
            out["ece"] = ece(np.array(confidence), np.array(right))
        impossible = self.refusals["tp"] + self.refusals["fn"]
        if impossible:
            out["unanswerable"] = impossible
            out["refusal_precision"] = self.refusals["tp"] / max(1, self.refusals["tp"] + self.refusals["fp"])
            out["refusal_recall"] = self.refusals["tp"] / impossible
        return out


def ece(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: how far confidence is from the share of right answers, averaged
    over `bins` equal-width bins weighted by how many answers fall in each."""
    right = np.asarray(right, dtype=np.float64)
    which = np.clip((np.asarray(confidence) * bins).astype(int), 0, bins - 1)
    return float(
        sum(
            (which == b).mean() * abs(confidence[which == b].mean() - right[which == b].mean())
            for b in range(bins)
            if (which == b).any()
        )
    )


def kind_of(q: dict[str, Any]) -> str:
    """The question's group for per-kind figures: single, follow-up or unanswerable."""
    if q.get("is_impossible"):
        return "unanswerable"
    return "follow-up" if q.get("history") else "single"


def write_corpus(folder: Path, passages_file: Path) -> dict[str, str]:
    """Write one document per passage (metadata in front matter); returns document path -> pid."""
    by_path = {}
    for number, line in enumerate(passages_file.read_text(encoding="utf-8").splitlines()):
        p = json.loads(line)
        rel = f"{number:06d}.txt"
        meta = {"title": p.get("title", "").replace("_", " ") or p["pid"]}
        meta.update({k: p[k] for k in ("published", "source") if p.get(k)})
        front = "".join(f"{key}: {json.dumps(value)}\n" for key, value in meta.items())
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"---\n{front}---\n{p['text']}", encoding="utf-8")
        by_path[rel] = p["pid"]
    return by_path


@contextmanager
def benchmark_engine(
    folder: Path, config: dict[str, Any] | None = None
) -> Iterator[tuple[Engine, dict[str, str]]]:
    """An engine over `folder/passages.jsonl`, indexed in a temporary folder, and document path -> pid."""
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "documents", Path(tmp) / "index"
        by_path = write_corpus(docs, folder / "passages.jsonl")
        settings = Settings.from_config({**DEFAULTS, **(config or {}), "DOCUMENTS": docs, "INDEX": index})
        engine = Engine(settings)
        engine.build()
        yield engine, by_path


def read_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(
    folder: Path,
    config: dict[str, Any] | None = None,
    questions: Iterable[dict[str, Any]] | None = None,
    use_history: bool = True,
    top_k: int = 10,
    progress: Callable[[int, int], None] | None = None,
    record: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Index `folder/passages.jsonl`, ask `folder/questions.jsonl`, and return the figures.

    `record`, if given, receives each question's outcome (`outcome`), so that two runs can be compared
    question by question and not only in aggregate.
    """
    questions = list(questions) if questions is not None else read_questions(folder / "questions.jsonl")
    # Every question is drafted (threshold 0) and the configured threshold applied here, so that the
    # confidence of refused answers can be checked against their drafts too (calibration).
    threshold = float({**DEFAULTS, **(config or {})}["MIN_CONFIDENCE"])
    started = time.perf_counter()
    with benchmark_engine(folder, {**(config or {}), "MIN_CONFIDENCE": 0.0}) as (engine, by_path):
        build_seconds = time.perf_counter() - started
        manifest = engine.index().manifest
        engine.ask("warm-up question")

        tallies: dict[str, Tally] = defaultdict(Tally)
        latencies = []
        for i, q in enumerate(questions):
            history = (q.get("history") or []) if use_history else []
            started = time.perf_counter()
            answer = engine.ask(q["question"], top_k=top_k, history=history)
            latencies.append((time.perf_counter() - started) * 1000)
            judged = outcome(q, answer, by_path, threshold)
            if judged["refused"] and threshold > 0:
                # The user sees no draft, and the passages listed in the order the engine lists them then.
                served = engine.ask(q["question"], top_k=top_k, history=history, min_confidence=threshold)
                judged = outcome(q, answer, by_path, threshold, served.citations)
            for kind in dict.fromkeys(["all", judged["group"], judged["kind"]]):
                _count(tallies[kind], judged)
            if record:
                record(judged)
            if progress:
                progress(i + 1, len(questions))

    result: dict[str, Any] = {
        "questions": len(questions),
        "passages": manifest.passages,
        "documents": len(manifest.documents),
        "retrieval": engine.settings.retrieval,
        "history": use_history,
        **tallies.pop("all").figures(),
        "latency_ms": {f"p{p}": float(np.percentile(latencies, p)) for p in (50, 95, 99)},
        "build_seconds": build_seconds,
    }
    if tallies:
        result["by_kind"] = {kind: t.figures() for kind, t in sorted(tallies.items())}
    return result


def outcome(
    q: dict[str, Any], answer: Any, by_path: dict[str, str], threshold: float, listed: Any = None
) -> dict[str, Any]:
    """What happened to one question: its draft (every question is drafted, as at threshold 0), whether
    it was refused (no draft, or under `threshold`: the user would not see the draft), whether the
    draft holds a gold answer, and where the gold passage ranks among the citations (`listed`, when
    those the user saw differ from the draft's).

    Plain JSON, so that `issqa eval --answers` can write it as one line per question. `group` is
    single, follow-up or unanswerable; `kind` is the data's own kind, or the group.
    """
    impossible = bool(q.get("is_impossible"))
    refused = not answer.answered or answer.confidence < threshold
    drafted = answer.answer.lower() if answer.answered else ""
    right = not impossible and any(a.lower() in drafted for a in q.get("answers", []))
    cited = [by_path.get(c.path) for c in (answer.citations if listed is None else listed)]
    rank = None if impossible else next((i for i, pid in enumerate(cited, 1) if pid == q["gold_pid"]), None)
    return {
        "qid": q.get("qid", q.get("id")),
        "group": kind_of(q),
        "kind": q.get("kind") or kind_of(q),
        "question": q["question"],
        "impossible": impossible,
        "answers": q.get("answers", []),
        "gold_pid": q.get("gold_pid"),
        "rank": rank,
        "drafted": answer.answered,
        "confidence": answer.confidence,
        "refused": refused,
        "right": right,  # a gold answer in the draft
        "hit": right and not refused,  # an answer-level hit: a gold answer in the answer given
        "draft": answer.answer,
        "cited": cited,
    }


def _count(tally: Tally, judged: dict[str, Any]) -> None:
    if judged["impossible"]:
        tally.refusals["tp" if judged["refused"] else "fn"] += 1
    else:
        tally.refusals["fp" if judged["refused"] else "tn"] += 1
    if judged["drafted"]:
        tally.confidences.append((judged["confidence"], judged["right"]))
    if judged["impossible"]:
        return
    tally.ranks.append(judged["rank"])
    tally.answer_hits += judged["hit"]
    if judged["rank"] == 1:
        tally.answer_hits_gold_first += judged["hit"]


def format_figures(result: dict[str, Any]) -> str:
    """The figures as an aligned, readable block."""
    lines = []
    for key, value in result.items():
        if key == "by_kind":
            continue
        if isinstance(value, dict):
            value = "  ".join(f"{k} {v:.1f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.3f}"
        lines.append(f"{key:28} {value}")
    if "by_kind" in result:
        lines.append("")
        lines.append(f"{'kind':14} {'n':>4} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'answer':>7} {'refused':>8}")
        for kind, f in result["by_kind"].items():
            refused = f.get("refusal_recall")
            lines.append(
                f"{kind:14} {f['answerable'] or f.get('unanswerable', 0):>4} "
                + (
                    f"{f['recall@1']:6.3f} {f['recall@5']:6.3f} {f['mrr@10']:7.3f} {f['answer_hit_rate']:7.3f}"
                    if f["answerable"]
                    else f"{'':6} {'':6} {'':7} {'':7}"
                )
                + (f" {refused:8.3f}" if refused is not None else "")
            )
    return "\n".join(lines)
