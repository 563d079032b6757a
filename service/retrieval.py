"""Finding the passages that answer a question: dense and keyword candidates, fused and re-scored.

Stage one gathers candidates from the vector index (meaning) and from BM25 over passage and title
(exact words, names, numbers). Stage two scores each candidate on four signals: its cosine to the
question, its BM25 score relative to the query's best, its best sentence's cosine, and the share of
question words it contains. The weights were tuned on squad-v1.1-dev (bench/tune_retrieval.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .documents import Document
from .query import Query
from .store import Index, Passage, Sentence, group_sentences
from .text import stems

CANDIDATES = 50  # from each of the dense and the keyword search
SIGNALS = ("dense", "keyword", "sentence", "coverage", "recency")
WEIGHTS = {"dense": 1.0, "keyword": 0.6, "sentence": 1.0, "coverage": 0.3, "recency": 0.1}
MODES = ("hybrid", "dense", "keyword")


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document; `score` is its cosine similarity to the question."""

    passage: Passage
    document: Document
    score: float
    sentences: tuple[Sentence, ...] = ()
    rank_score: float = 0.0
    signals: tuple[
        float, ...
    ] = ()  # stage two's signals, in the order of SIGNALS (answer confidence reads them)


@dataclass(frozen=True)
class Candidates:
    """Stage one's candidates with every signal stage two weighs, one row per passage."""

    ids: list[int]
    signals: np.ndarray  # shape (len(ids), len(SIGNALS))
    passages: dict[int, Passage]
    sentence_where: list[tuple[int, int, int]]  # (passage id, start, end), as Index.sentence_rows
    sentence_vectors: np.ndarray  # one row per entry of sentence_where

    def sentences(self, ids: list[int]) -> dict[int, list[Sentence]]:
        """The sentences of some candidates (only the hits need them as objects)."""
        wanted = set(ids)
        rows = [i for i, row in enumerate(self.sentence_where) if row[0] in wanted]
        return group_sentences(ids, [self.sentence_where[i] for i in rows], self.sentence_vectors[rows])


def candidates(index: Index, query: Query, depth: int = CANDIDATES) -> Candidates:
    """Gather dense and keyword candidates and compute their signals."""
    query_vector = query.vector
    dense = {n.passage_id: n.score for n in index.search(query_vector, depth)}
    keyword = (
        {n.passage_id: n.score for n in index.keyword_search(query.keyword, depth)} if query.keyword else {}
    )
    ids = list(dense) + [pid for pid in keyword if pid not in dense]
    if not ids:
        return Candidates([], np.zeros((0, len(SIGNALS))), {}, [], np.zeros((0, 0), np.float32))
    missing = [pid for pid in ids if pid not in dense]
    for pid, vector in zip(missing, index.vectors(missing), strict=True):
        dense[pid] = float(vector @ query_vector)
    best_keyword = max(keyword.values(), default=0.0) or 1.0
    where, sentence_vectors = index.sentence_rows(ids)
    passages = index.passages(ids)
    q_words = query.search_stems
    recency = _recency(index.published(ids)) if query.recent else {}
    best_sentence = _best_sentence_scores(where, sentence_vectors @ query_vector)
    rows = []
    for pid in ids:
        words = stems(passages[pid].text) if pid in passages else set()
        rows.append(
            (
                dense[pid],
                keyword.get(pid, 0.0) / best_keyword,
                best_sentence.get(pid, dense[pid]),
                len(q_words & words) / len(q_words) if q_words else 0.0,
                recency.get(pid, 0.0),
            )
        )
    return Candidates(ids, np.array(rows, dtype=np.float64), passages, where, sentence_vectors)


def _best_sentence_scores(where: list[tuple[int, int, int]], scores: np.ndarray) -> dict[int, float]:
    """Each passage's best sentence score; `where` is ordered by passage, as `Index.sentence_rows` gives it."""
    if not where:
        return {}
    pids = np.array([row[0] for row in where])
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
    return dict(zip(pids[starts].tolist(), np.maximum.reduceat(scores, starts).tolist(), strict=True))


def _recency(published: dict[int, str | None]) -> dict[int, float]:
    """Each passage's article date scaled to 0 (oldest among the candidates) .. 1 (newest)."""
    dates = {pid: d for pid, d in published.items() if d}
    if len(set(dates.values())) < 2:
        return {}
    order = sorted(set(dates.values()))
    return {pid: order.index(d) / (len(order) - 1) for pid, d in dates.items()}


def rank(found: Candidates, mode: str = "hybrid", weights: dict[str, float] = WEIGHTS) -> np.ndarray:
    """Candidate scores for a retrieval mode; higher ranks first."""
    if mode == "dense":
        return np.asarray(found.signals[:, 0])
    if mode == "keyword":
        return np.asarray(found.signals[:, 1] - (found.signals[:, 1] == 0))  # non-matches rank last
    return np.asarray(found.signals @ np.array([weights[s] for s in SIGNALS]))


def search(index: Index, query: Query, k: int, mode: str = "hybrid") -> list[Hit]:
    """The `k` best passages for the query, best first, with their documents and sentences."""
    found = candidates(index, query, max(k, CANDIDATES))
    scores = rank(found, mode)
    order = np.argsort(-scores, kind="stable")[:k]
    top = [found.ids[i] for i in order]
    passages = found.passages
    documents = index.documents(passages[pid].document_id for pid in top if pid in passages)
    sentences = found.sentences(top)
    return [
        Hit(
            passage=passages[pid],
            document=documents[passages[pid].document_id],
            score=float(found.signals[i, 0]),
            sentences=tuple(sentences[pid]),
            rank_score=float(scores[i]),
            signals=tuple(found.signals[i].tolist()),
        )
        for i, pid in zip(order, top, strict=True)
        if pid in passages
    ]
