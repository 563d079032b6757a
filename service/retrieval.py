"""Finding the passages nearest to a question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .documents import Document
from .embedding import Embedder
from .store import Index, Passage, Sentence


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document and its similarity to the question (cosine)."""

    passage: Passage
    document: Document
    score: float
    sentences: tuple[Sentence, ...] = ()


def search(index: Index, query_vector: np.ndarray, k: int) -> list[Hit]:
    """The `k` passages most similar to `query_vector`, best first, with their documents."""
    neighbours = index.search(query_vector, k)
    passages = index.passages([n.passage_id for n in neighbours])
    documents = index.documents(p.document_id for p in passages.values())
    sentences = index.sentences(list(passages))
    return [
        Hit(
            passages[n.passage_id],
            documents[passages[n.passage_id].document_id],
            n.score,
            tuple(sentences[n.passage_id]),
        )
        for n in neighbours
        if n.passage_id in passages
    ]


def retrieve(index: Index, embedder: Embedder, question: str, k: int) -> tuple[np.ndarray, list[Hit]]:
    """Embed `question` and search; the vector comes back too, for scoring answer sentences."""
    vector = embedder.encode([question])[0]
    return vector, search(index, vector, k)
