"""The embedder: questions asked at the same moment share one forward pass, with the same vectors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.embedding import SentenceTransformerEmbedder

QUESTIONS = [
    "Who replaced Rogozin as head of Roskosmos?",
    "Which cosmonaut flies on a SpaceX rocket?",
    "How far above the Earth does the station orbit?",
    "When was the extra Soyuz flight agreed?",
    "What did the Kremlin say about the agreement?",
    "Why did Russia threaten to leave the ISS?",
]


@pytest.fixture
def batching(embedder) -> SentenceTransformerEmbedder:
    """A fresh embedder (empty queue, no cache) sharing the session's loaded weights."""
    fresh = SentenceTransformerEmbedder.__new__(SentenceTransformerEmbedder)
    fresh.__dict__.update(embedder.__dict__)
    fresh.cache_size = 0
    fresh._lock = threading.Lock()
    fresh._queue_lock = threading.Lock()
    fresh._queue = type(embedder._queue)()
    return fresh


def ask_together(embedder: SentenceTransformerEmbedder, questions: list[str]) -> list:
    """Queue every question while the model is busy, then let them all through at once."""
    with ThreadPoolExecutor(len(questions)) as pool:
        with embedder._lock:  # the model is "busy": every caller must queue
            futures = [pool.submit(embedder.encode, [q]) for q in questions]
            deadline = time.monotonic() + 10
            while len(embedder._queue) < len(questions) and time.monotonic() < deadline:
                time.sleep(0.005)
            assert len(embedder._queue) == len(questions)
        return [f.exception() or f.result() for f in futures]


def test_concurrent_questions_share_one_forward_pass_and_get_their_own_vectors(batching, embedder):
    passes: list[int] = []
    forward = batching._forward
    batching._forward = lambda texts, show_progress=False: passes.append(len(texts)) or forward(texts)
    results = ask_together(batching, QUESTIONS)
    assert passes == [len(QUESTIONS)]  # one pass for all six
    alone = [embedder._forward([q])[0] for q in QUESTIONS]
    for got, expected in zip(results, alone, strict=True):
        assert got.shape == (1, embedder.dimensions)
        assert np.allclose(got[0], expected, atol=1e-5)
    similarities = np.vstack(results)[:, :] @ np.vstack(alone).T
    assert (similarities.argmax(axis=1) == np.arange(len(QUESTIONS))).all()  # no vectors swapped


def test_a_lone_question_is_encoded_at_once(batching):
    passes: list[int] = []
    forward = batching._forward
    batching._forward = lambda texts, show_progress=False: passes.append(len(texts)) or forward(texts)
    batching.encode([QUESTIONS[0]])
    batching.encode([QUESTIONS[1]])
    assert passes == [1, 1] and not batching._queue


def test_a_failed_pass_fails_every_question_in_it_and_the_next_ones_still_work(batching, embedder):
    forward = batching._forward

    def broken(texts, show_progress=False):
        batching._forward = forward  # only the first pass fails
        raise RuntimeError("model crashed")

    batching._forward = broken
    results = ask_together(batching, QUESTIONS[:4])
    assert all(isinstance(r, RuntimeError) for r in results)
    again = batching.encode([QUESTIONS[0]])
    assert np.allclose(again[0], embedder._forward([QUESTIONS[0]])[0], atol=1e-5)
