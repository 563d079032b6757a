"""The vector index by size: exact below a threshold, IVF above it, with its recall against exact search."""

from __future__ import annotations

import copy
from collections import OrderedDict

import faiss
import numpy as np
import pytest

from service import store


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_exact_below_the_threshold_and_ivf_above():
    small = store.new_vector_index(store.EXACT_LIMIT, 8)
    assert isinstance(small, faiss.IndexIDMap2)
    big = store.new_vector_index(store.EXACT_LIMIT + 1, 8)
    assert isinstance(big, faiss.IndexIVFFlat) and not big.is_trained
    assert big.nlist == store.ivf_lists(store.EXACT_LIMIT + 1)
    assert store.ivf_lists(1_000_000) == 2000


@pytest.fixture(scope="module")
def clustered(embedder):
    """Real-ish vectors: real sentence embeddings as topic centres, passages scattered around them."""
    topics = [
        "The space station orbits the Earth.",
        "Oil prices rose sharply in 1973.",
        "The river floods every spring.",
        "The court ruled on the new law.",
        "Students enrolled at the university.",
        "The telescope observed a distant galaxy.",
        "The team won the championship final.",
        "Farmers harvested wheat in the valley.",
    ]
    centres = embedder.encode(topics)
    rng = np.random.default_rng(0)
    n = 30_000
    vectors = unit(centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, 384)) * 0.03)
    queries = unit(centres[rng.integers(0, len(centres), 50)] + rng.standard_normal((50, 384)) * 0.03)
    return vectors, queries


def test_ivf_recall_against_exact_and_stored_vectors(clustered, tmp_path, monkeypatch):
    vectors, queries = clustered
    monkeypatch.setattr(store, "EXACT_LIMIT", 10_000)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 1  # ids need not be positions
    index = store.new_vector_index(len(vectors), vectors.shape[1])
    assert isinstance(index, faiss.IndexIVFFlat)
    store.add_vectors(index, vectors, ids)
    path = tmp_path / "vectors.faiss"
    faiss.write_index(index, str(path))
    loaded = store.read_vector_index(path)  # memory-mapped, as the server reads it

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    _, found = loaded.search(queries, 10)
    recall = np.mean([len(set(f) & set(ids[t])) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95
    for row in (0, 17, len(vectors) - 1):
        assert np.allclose(loaded.reconstruct(int(ids[row])), vectors[row])


def test_exact_index_reads_memory_mapped(tmp_path):
    vectors = unit(np.random.default_rng(1).standard_normal((100, 16)))
    index = store.new_vector_index(100, 16)
    store.add_vectors(index, vectors, np.arange(100, dtype=np.int64) + 5)
    faiss.write_index(index, str(tmp_path / "v.faiss"))
    loaded = store.read_vector_index(tmp_path / "v.faiss")
    _, found = loaded.search(vectors[:3], 1)
    assert found[:, 0].tolist() == [5, 6, 7]
    assert np.allclose(loaded.reconstruct(42), vectors[37])


def test_the_question_cache_returns_identical_vectors(embedder):
    cached = copy.copy(embedder)  # the loaded model, with its own cache of 4
    cached.cache_size, cached._cache = 4, OrderedDict()
    first = cached.encode(["Who replaced Rogozin?", "Which cosmonaut flies on SpaceX?"])
    assert len(cached._cache) == 2
    again = cached.encode(["Who replaced Rogozin?", "Which cosmonaut flies on SpaceX?"])
    assert np.array_equal(first, again)
    mixed = cached.encode(["Which cosmonaut flies on SpaceX?", "A new question"])
    assert np.array_equal(mixed[0], first[1])
    uncached = type(embedder).encode(_no_cache(embedder), ["Who replaced Rogozin?"])
    assert np.allclose(uncached[0], first[0], atol=1e-6)
    cached.encode([f"question {i}" for i in range(6)])
    assert len(cached._cache) == 4  # the oldest are dropped


def _no_cache(embedder):
    class View:
        cache_size = 0
        dimensions = embedder.dimensions
        _encode = embedder._encode

    return View()
