"""Finding the passages that answer a question: dense and keyword candidates, fused and re-scored.

Stage one gathers candidates from the vector index (meaning) and from BM25 over passage and title
(exact words, names, numbers). Stage two scores each candidate on four signals: its cosine to the
question, its BM25 score relative to the query's best, its best sentence's cosine, and the share of
question words it contains. The weights were tuned on squad-v1.1-dev (bench/tune_retrieval.py). A
follow-up then prefers the passages of the article its last answer came from (`ARTICLE_BONUS`).
The `closest` order (`CLOSEST_WEIGHTS`) lists the passages when the documents may not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from .documents import Document
from .embedding import Embedder
from .query import History, Query, analyse
from .store import Held, Index, Passage, Sentence
from .text import date_stems

CANDIDATES = 50  # from each of the dense and the keyword search
SIGNALS = ("dense", "keyword", "sentence", "coverage", "recency")
WEIGHTS = {"dense": 1.0, "keyword": 0.6, "sentence": 1.0, "coverage": 0.3, "recency": 0.1}
MODES = ("hybrid", "dense", "keyword")
# When nothing is quoted (the documents may not say), the passages listed are where the reader will look
# for the answer, and the best sentence finds it first more often than the hybrid score, above all for
# questions in the reader's own words. The weights were chosen by bench/tune_retrieval.py on
# squad-v1.1-dev and bench/data/paraphrases together. They only list: the answer and its confidence,
# learned on the hybrid order, keep that order (docs/benchmarks.md, section 12).
CLOSEST_WEIGHTS = {"dense": 0.0, "keyword": 0.03, "sentence": 2.0, "coverage": 0.7, "recency": 0.1}
# A follow-up is most often about the article the last answer came from (the next paragraph, another
# detail), and over long articles on one subject another article's passage can outscore it; but a
# reader also follows a story into another article. In hybrid mode that article's passages rank as if
# their score were this much higher: enough to decide between passages about as relevant, not to
# override a clearly better one elsewhere (bench/follow_article.py, docs/benchmarks.md section 12).
ARTICLE_BONUS = 0.05


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document; `score` is its cosine similarity to the question."""

    passage: Passage
    document: Document
    score: float
    sentences: tuple[Sentence, ...] = ()
    # The hybrid score, also when a `dense` or `keyword` search ordered the hits, and without a
    # follow-up's ARTICLE_BONUS: it measures how well the passage fits the question (the confidence reads it).
    rank_score: float = 0.0
    signals: tuple[
        float, ...
    ] = ()  # stage two's signals, in the order of SIGNALS (answer confidence reads them)


@dataclass(frozen=True)
class Candidates:
    """Stage one's candidates with every signal stage two weighs, one row per passage."""

    ids: list[int]
    signals: np.ndarray  # shape (len(ids), len(SIGNALS))
    held: dict[int, Held]  # the candidates' passages with their sentences (missing ones left out)


def gather(
    index: Index, embedder: Embedder, question: str, history: History = (), depth: int = CANDIDATES
) -> tuple[Query, Candidates]:
    """Read and embed the question, and gather stage one's candidates: what `Engine.ask` starts with.

    The keyword half needs no vector, so it runs while the model embeds the question (`analyse`'s
    `alongside`): a lone question uses a core the model leaves idle.
    """
    keyword: dict[int, float] = {}
    query = analyse(
        index,
        embedder,
        question,
        history,
        alongside=lambda read: keyword.update(keyword_candidates(index, read, depth)),
    )
    return query, candidates(index, query, depth, keyword)


def keyword_candidates(index: Index, query: Query, depth: int = CANDIDATES) -> dict[int, float]:
    """Stage one's keyword half: the BM25 scores of the `depth` best passages, best first, their
    passages read (from the store when not cached)."""
    if not query.keyword:
        return {}
    found = index.keyword_scores(query.keyword, depth)
    index.held(found)
    return found


def candidates(
    index: Index, query: Query, depth: int = CANDIDATES, keyword: dict[int, float] | None = None
) -> Candidates:
    """Gather dense and keyword candidates and compute their signals.

    `keyword` is `keyword_candidates(index, query, depth)` when the caller has it already.
    """
    query_vector = query.vector
    dense = index.nearest(query_vector, depth)
    if keyword is None:
        keyword = keyword_candidates(index, query, depth)
    ids = list(dense) + [pid for pid in keyword if pid not in dense]
    if not ids:
        return Candidates([], np.zeros((0, len(SIGNALS))), {})
    missing = ids[len(dense) :]  # keyword candidates the dense search did not find
    for pid, vector in zip(missing, index.vectors(missing), strict=True):
        dense[pid] = float(vector @ query_vector)  # one product each: as many as the dense side's
    held = index.held(ids)
    best_keyword = max(keyword.values(), default=0.0) or 1.0
    q_words = query.search_stems
    published = index.published(ids) if query.recent or query.dated else {}
    recency = _recency(published) if query.recent else {}
    best_sentence = _best_sentence_scores(held, query_vector)
    # One column at a time, each divided as numpy divides: the same floats as one row at a time.
    signals = np.empty((len(ids), len(SIGNALS)), dtype=np.float64)
    signals[:, 0] = list(dense.values())  # in the order of `ids`: the dense ones, then `missing`
    signals[:, 1] = [keyword.get(pid, 0.0) for pid in ids]
    signals[:, 1] /= best_keyword
    signals[:, 2] = [best_sentence.get(pid, score) for pid, score in dense.items()]
    if q_words:
        # A month or a year the question names counts as covered by every passage of an article of
        # that date ("dismissed in July 2022": the article of 2022-07-15 says "on Friday").
        dates = {pid: date_stems(published.get(pid)) for pid in ids} if query.dated else {}
        signals[:, 3] = [
            len(q_words & (held[pid].stems | dates[pid] if dates else held[pid].stems)) if pid in held else 0
            for pid in ids
        ]
        signals[:, 3] /= len(q_words)
    else:
        signals[:, 3] = 0.0
    signals[:, 4] = [recency.get(pid, 0.0) for pid in ids] if recency else 0.0
    return Candidates(ids, signals, held)


def _best_sentence_scores(held: dict[int, Held], query_vector: np.ndarray) -> dict[int, float]:
    """Each passage's best sentence cosine, from one product of the query with all their sentences.

    The passages' sentence vectors are stacked in passage id order, the order the signal weights
    were tuned with: the product's rows, and so every score, are then bit for bit those.
    """
    ordered = sorted(pid for pid, passage in held.items() if passage.sentences)
    if not ordered:
        return {}
    blocks = [held[pid].vectors for pid in ordered]
    starts = list(accumulate((len(block) for block in blocks[:-1]), initial=0))
    scores = np.concatenate(blocks) @ query_vector
    return dict(zip(ordered, np.maximum.reduceat(scores, starts).tolist(), strict=True))


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


def _in_article(index: Index, found: Candidates, passage_id: int) -> np.ndarray:
    """1.0 for each candidate from the article of `passage_id`, else 0.0.

    The article is the passage's document, or any document of its folder with its title
    (`Index.articles`): an article kept as several files is still one article.
    """
    home = index.passages([passage_id]).get(passage_id)
    if home is None:
        return np.zeros(len(found.ids))
    owners = {pid: held.passage.document_id for pid, held in found.held.items()}
    articles = index.articles({home.document_id, *owners.values()})
    article = articles.get(home.document_id)
    return np.array(
        [pid in owners and articles.get(owners[pid]) == article for pid in found.ids], dtype=np.float64
    )


def search(index: Index, query: Query, k: int, mode: str = "hybrid") -> list[Hit]:
    """The `k` best passages for the query, best first, with their documents and sentences.

    `mode` is one of MODES, or `closest`: the passages to list when nothing is quoted.
    """
    return ordered(index, query, candidates(index, query, max(k, CANDIDATES)), k, mode)


def ordered(index: Index, query: Query, found: Candidates, k: int, mode: str = "hybrid") -> list[Hit]:
    """The `k` best of stage one's candidates in a mode's order, as hits: one gathering, several orders."""
    # The hybrid score orders the hits in hybrid mode and is what the answer confidence reads, also
    # when another order (`closest`, or `dense` or `keyword`, kept for comparison) lists them.
    fused = rank(found)
    held = found.held
    if mode == "closest":
        scores = rank(found, "hybrid", CLOSEST_WEIGHTS)
    elif mode != "hybrid":
        scores = rank(found, mode)
    elif query.follows is not None:
        scores = fused + ARTICLE_BONUS * _in_article(index, found, query.follows)
    else:
        scores = fused
    order = np.argsort(-scores, kind="stable")[:k].tolist()
    top = [(i, held[found.ids[i]]) for i in order if found.ids[i] in held]
    documents = index.documents(passage.passage.document_id for _, passage in top)
    signals = found.signals[[i for i, _ in top]].tolist()
    return [
        Hit(
            passage=passage.passage,
            document=documents[passage.passage.document_id],
            score=row[0],
            sentences=passage.sentences,
            rank_score=float(fused[i]),
            signals=tuple(row),
        )
        for (i, passage), row in zip(top, signals, strict=True)
    ]
