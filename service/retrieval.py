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
from .store import Index, Passage, Sentence, group_sentences
from .text import KEYWORD_BUDGET, STOPWORDS, content_words, keyword_query, stems

CANDIDATES = 50  # from each of the dense and the keyword search
SIGNALS = ("dense", "keyword", "sentence", "coverage", "recency")
WEIGHTS = {"dense": 1.0, "keyword": 0.6, "sentence": 1.0, "coverage": 0.3, "recency": 0.1}
MODES = ("hybrid", "dense", "keyword")

# Words that make a question lean on what was said before: personal pronouns, "there", a leading
# "and ...?" or "what about ...?". ("this" and "that" are left out: most questions use them as
# relative words, "the river that ...", and so do questions on a new topic.)
_FOLLOW_UP = re.compile(
    r"\b(he|him|his|she|her|hers|they|them|their|theirs|it|its|there)\b|"
    r"^\s*(and|but|so|what about|how about)\b",
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
# "he" and "she" point at a person, and the person a conversation has just met is most often the
# one the last answer named ("Who replaced Rogozin?" ... "What was his previous job?").
_PERSON = re.compile(r"\b(he|him|his|she|her|hers)\b", re.I)
_TERM = re.compile(r"[\w’'-]*\w")
# Follow-ups (bench/tune_followup.py, tuned on bench/data/followups, docs/benchmarks.md): the earlier
# turn's terms that the passages they find share widely are the conversation's topic; they are added
# to the keyword query and, embedded, to the question's vector at CONTEXT_WEIGHT.
TOPIC_DEPTH = 20  # the passages the earlier terms find by keyword, to tell topic from detail
TOPIC_SHARE = 0.3  # a term is the topic when at least this share of those passages holds it
CONTEXT_WEIGHT = 0.25


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
    passages: dict[int, Passage]
    sentence_where: list[tuple[int, int, int]]  # (passage id, start, end), as Index.sentence_rows
    sentence_vectors: np.ndarray  # one row per entry of sentence_where

    def sentences(self, ids: list[int]) -> dict[int, list[Sentence]]:
        """The sentences of some candidates (only the hits need them as objects)."""
        wanted = set(ids)
        rows = [i for i, row in enumerate(self.sentence_where) if row[0] in wanted]
        return group_sentences(ids, [self.sentence_where[i] for i in rows], self.sentence_vectors[rows])


def candidates(index: Index, query_vector: np.ndarray, question: str, depth: int = CANDIDATES) -> Candidates:
    """Gather dense and keyword candidates and compute their signals."""
    dense = {n.passage_id: n.score for n in index.search(query_vector, depth)}
    # A corpus too small to reach the keyword budget never needs the words' passage counts.
    large = index.size * len(content_words(question)) > KEYWORD_BUDGET
    frequencies = index.word_frequencies if large else None
    query = keyword_query(question, frequencies)
    keyword = {n.passage_id: n.score for n in index.keyword_search(query, depth)} if query else {}
    ids = list(dense) + [pid for pid in keyword if pid not in dense]
    if not ids:
        return Candidates([], np.zeros((0, len(SIGNALS))), {}, [], np.zeros((0, 0), np.float32))
    missing = [pid for pid in ids if pid not in dense]
    for pid, vector in zip(missing, index.vectors(missing), strict=True):
        dense[pid] = float(vector @ query_vector)
    best_keyword = max(keyword.values(), default=0.0) or 1.0
    where, sentence_vectors = index.sentence_rows(ids)
    passages = index.passages(ids)
    q_words = stems(question)
    recency = _recency(index.published(ids)) if _RECENCY.search(question) else {}
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
    sentences = found.sentences(top)
    return [
        Hit(
            passage=passages[pid],
            document=documents[passages[pid].document_id],
            score=float(found.signals[i, 0]),
            sentences=tuple(sentences[pid]),
            rank_score=float(scores[i]),
        )
        for i, pid in zip(order, top, strict=True)
        if pid in passages
    ]


def earlier_terms(question: str, history: Sequence[dict[str, str]]) -> tuple[list[str], list[str]]:
    """What a follow-up may be leaning on: the last question's words, and the last answer's new names.

    First the content words of the last user question, then the capitalised words of the last answer
    that the last question did not contain; both without the words the new question already has, in
    the order said, without repeats.
    """
    answer = previous = ""
    for turn in reversed(history):
        if turn["role"] == "assistant" and not answer and not previous:
            answer = _MARKER.sub("", turn["content"]).strip()
        elif turn["role"] == "user":
            previous = turn["content"].strip()
            break
    seen = set(content_words(question))

    def new(words: list[str]) -> list[str]:
        out = []
        for word in words:
            key = word.lower().strip("'’")
            if key and key not in seen and key not in STOPWORDS:
                seen.add(key)
                out.append(word)
        return out

    asked = new(_TERM.findall(previous))
    return asked, new(_NAME_WORD.findall(answer))


def topic_terms(
    index: Index, terms: Sequence[str], depth: int = TOPIC_DEPTH, share: float = TOPIC_SHARE
) -> list[str]:
    """The terms that most of the passages they find hold (in text or title): the topic, not detail.

    "Where does the Rhine begin?": the passages about the Rhine far outnumber those about where
    anything begins, so "Rhine" is kept and "begin" is not. A follow-up about another part of the
    article then finds that part, not the passage of the last answer again.
    """
    query = keyword_query(" ".join(terms))
    if not query:
        return []
    found = [n.passage_id for n in index.keyword_search(query, depth)]
    passages = index.passages(found)
    if not passages:
        return []
    titles = {d.id: d.title for d in index.documents(p.document_id for p in passages.values()).values()}
    held = [stems(p.text) | stems(titles.get(p.document_id, "")) for p in passages.values()]
    return [t for t in terms if sum(stems(t) <= words for words in held) >= share * len(held) and stems(t)]


def conversation_context(
    index: Index, question: str, history: Sequence[dict[str, str]], share: float = TOPIC_SHARE
) -> str:
    """The conversation's topic terms that `question` leans on, or "" when it stands on its own.

    A "he" or "she" also takes every name the last answer introduced, detail or not. Only a
    question with a follow-up cue (a personal pronoun, "there", a leading "and", or fewer
    than two content words) takes anything from the history: a question that names its own subject
    is left exactly as asked, so a new topic is never dragged back to the old one.
    """
    if not history or not (_FOLLOW_UP.search(question) or len(content_words(question)) < 2):
        return ""
    asked, named = earlier_terms(question, history)
    topic = topic_terms(index, asked + named, share=share)
    if _PERSON.search(question):
        topic += [n for n in named if n not in topic]
    return " ".join(topic)


def retrieve(
    index: Index,
    embedder: Embedder,
    question: str,
    k: int,
    mode: str = "hybrid",
    history: Sequence[dict[str, str]] = (),
    weight: float = CONTEXT_WEIGHT,
    share: float = TOPIC_SHARE,
) -> tuple[np.ndarray, list[Hit]]:
    """Embed the question (with the conversation's topic, for a follow-up) and search.

    The query vector comes back too: answer sentences are scored against it.
    """
    context = conversation_context(index, question, history, share)
    if not context:
        vector = embedder.encode([question])[0]
        return vector, search(index, vector, question, k, mode)
    own, earlier = embedder.encode([question, context])
    vector = own + weight * earlier
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    return vector, search(index, vector, f"{question} {context}", k, mode)
