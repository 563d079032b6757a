"""Finding the passages that answer a question: dense and keyword candidates, fused and re-scored.

Stage one gathers candidates from the vector index (meaning) and from BM25 over passage and title
(exact words, names, numbers). Stage two scores each candidate on four signals: its cosine to the
question, its BM25 score relative to the query's best, its best sentence's cosine, and the share of
question words it contains. The weights were tuned on squad-v1.1-dev (bench/tune_retrieval.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .documents import Document
from .embedding import Embedder
from .store import Index, Passage, Sentence
from .text import STOPWORDS, content_words, keyword_query, stems

CANDIDATES = 50  # from each of the dense and the keyword search
SIGNALS = ("dense", "keyword", "sentence", "coverage", "recency")
WEIGHTS = {"dense": 1.0, "keyword": 0.6, "sentence": 1.0, "coverage": 0.3, "recency": 0.1}
MODES = ("hybrid", "dense", "keyword")

# Words that make a question lean on what was said before: pronouns, "there", "then", "and ...?".
_FOLLOW_UP = re.compile(
    r"\b(he|him|his|she|her|hers|they|them|their|theirs|it|its|this|that|these|those|there|then|"
    r"the same|the other|also|else)\b|^\s*(and|but|so|what about|how about)\b",
    re.I,
)
# Questions about the present: among passages about as relevant, the newer article should win.
_RECENCY = re.compile(
    r"\b(latest|newest|most recent|recent(ly)?|now|nowadays|current(ly)?|today|these days|so far|"
    r"still|any ?more|at present|presently|up to date)\b",
    re.I,
)
_MARKER = re.compile(r"\s*\[\d+\]|^Reported \d{4}-\d{2}-\d{2}: |(?<= )Reported \d{4}-\d{2}-\d{2}: ")
_NAME_WORD = re.compile(r"\b[A-Z][\w’'-]*[\w]")
FOLLOW_UP_WEIGHT = 1.0  # the earlier turn counts as much as the question itself
STANDALONE_WEIGHT = 0.25  # a question that names its own subject is barely pulled back


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document; `score` is its cosine similarity to the question."""

    passage: Passage
    document: Document
    score: float
    sentences: tuple[Sentence, ...] = ()
    rank_score: float = 0.0


@dataclass(frozen=True)
class Candidates:
    """Stage one's candidates with every signal stage two weighs, one row per passage."""

    ids: list[int]
    signals: np.ndarray  # shape (len(ids), len(SIGNALS))
    sentences: dict[int, list[Sentence]]
    passages: dict[int, Passage]


def candidates(index: Index, query_vector: np.ndarray, question: str, depth: int = CANDIDATES) -> Candidates:
    """Gather dense and keyword candidates and compute their signals."""
    dense = {n.passage_id: n.score for n in index.search(query_vector, depth)}
    query = keyword_query(question)
    keyword = {n.passage_id: n.score for n in index.keyword_search(query, depth)} if query else {}
    ids = list(dense) + [pid for pid in keyword if pid not in dense]
    if not ids:
        return Candidates([], np.zeros((0, len(SIGNALS))), {}, {})
    missing = [pid for pid in ids if pid not in dense]
    for pid, vector in zip(missing, index.vectors(missing), strict=True):
        dense[pid] = float(vector @ query_vector)
    best_keyword = max(keyword.values(), default=0.0) or 1.0
    sentences = index.sentences(ids)
    passages = index.passages(ids)
    q_words = stems(question)
    recency = _recency(index.published(ids)) if _RECENCY.search(question) else {}
    rows = []
    for pid in ids:
        sims = [float(s.vector @ query_vector) for s in sentences.get(pid, [])]
        words = stems(passages[pid].text) if pid in passages else set()
        rows.append(
            (
                dense[pid],
                keyword.get(pid, 0.0) / best_keyword,
                max(sims, default=dense[pid]),
                len(q_words & words) / len(q_words) if q_words else 0.0,
                recency.get(pid, 0.0),
            )
        )
    return Candidates(ids, np.array(rows, dtype=np.float64), sentences, passages)


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
        return found.signals[:, 0]
    if mode == "keyword":
        return found.signals[:, 1] - (found.signals[:, 1] == 0)  # non-matches rank last
    return found.signals @ np.array([weights[s] for s in SIGNALS])


def search(index: Index, query_vector: np.ndarray, question: str, k: int, mode: str = "hybrid") -> list[Hit]:
    """The `k` best passages for the question, best first, with their documents and sentences."""
    found = candidates(index, query_vector, question, max(k, CANDIDATES))
    scores = rank(found, mode)
    order = np.argsort(-scores, kind="stable")[:k]
    top = [found.ids[i] for i in order]
    passages = found.passages
    documents = index.documents(passages[pid].document_id for pid in top if pid in passages)
    return [
        Hit(
            passage=passages[pid],
            document=documents[passages[pid].document_id],
            score=float(found.signals[i, 0]),
            sentences=tuple(found.sentences.get(pid, [])),
            rank_score=float(scores[i]),
        )
        for i, pid in zip(order, top, strict=True)
        if pid in passages
    ]


def conversation_context(question: str, history: Sequence[dict[str, str]]) -> tuple[str, str, float]:
    """What the conversation adds to `question`: text to embed, keywords, and how much it counts.

    A pronoun in a follow-up ("What was his previous job?") most often points at what the last
    answer introduced, not at the last question's subject; so the last answer is embedded, and its
    new names (capitalised words the previous question did not contain) become keywords. Without an
    answer, the previous question stands in. Follow-ups lean fully on this context; a question with
    no pronoun or ellipsis names its own subject, so the context counts little there.
    """
    answer = previous = ""
    for turn in reversed(history):
        if turn["role"] == "assistant" and not answer and not previous:
            answer = _MARKER.sub("", turn["content"]).strip()
        elif turn["role"] == "user":
            previous = turn["content"].strip()
            break
    if not answer and not previous:
        return "", "", 0.0
    asked = {w.lower() for w in _NAME_WORD.findall(previous)}
    names = [w for w in dict.fromkeys(_NAME_WORD.findall(answer)) if w.lower() not in asked | STOPWORDS]
    keywords = " ".join(names) if names else previous
    follow_up = bool(_FOLLOW_UP.search(question)) or len(content_words(question)) < 2
    return answer or previous, keywords, FOLLOW_UP_WEIGHT if follow_up else STANDALONE_WEIGHT


def retrieve(
    index: Index,
    embedder: Embedder,
    question: str,
    k: int,
    mode: str = "hybrid",
    history: Sequence[dict[str, str]] = (),
) -> tuple[np.ndarray, list[Hit]]:
    """Embed the question (blended with the conversation so far) and search.

    The query vector comes back too: answer sentences are scored against it.
    """
    context, names, weight = conversation_context(question, history)
    if not context:
        vector = embedder.encode([question])[0]
        return vector, search(index, vector, question, k, mode)
    own, earlier = embedder.encode([question, context])
    vector = own + weight * earlier
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    keywords = f"{question} {names}" if weight >= FOLLOW_UP_WEIGHT else question
    return vector, search(index, vector, keywords, k, mode)
