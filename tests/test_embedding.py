"""The embedder: questions asked at the same moment share one forward pass, with the same vectors.

With ISSQA_BACKEND=onnx, questions are encoded by onnxruntime with torch's vectors, and passages by torch.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from service import create_app, embedding, get_engine
from service import engine as engine_module
from service.embedding import SentenceTransformerEmbedder, load_embedder
from service.engine import Settings
from service.errors import ConfigError

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


# ISSQA_BACKEND=onnx: questions encoded by onnxruntime must get torch's vectors (the index is torch's).

ROOT = Path(__file__).resolve().parents[1]


def real_questions(count: int = 10) -> list[str]:
    """Questions from the project's own evaluation set, of varied lengths."""
    lines = (ROOT / "evals" / "iss-news" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:count]]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path) -> SentenceTransformerEmbedder:
    """The real model with questions on onnxruntime, exported into a temporary cache (no question cache)."""
    return SentenceTransformerEmbedder(backend="onnx", onnx_cache=onnx_cache, cache_size=0)


def test_onnx_question_vectors_match_torch(onnx_embedder, embedder):
    questions = real_questions()
    long_text = next((ROOT / "documents").glob("*.txt")).read_text(encoding="utf-8")
    assert embedder.count_tokens(long_text) > embedder.max_tokens  # truncated alike by both
    for text in [*questions, long_text]:
        got = onnx_embedder.encode([text])
        expected = embedder._torch_forward([text])
        assert got.dtype == np.float32 and got.shape == (1, embedder.dimensions)
        assert np.isclose(np.linalg.norm(got[0]), 1.0, atol=1e-5)
        assert float(got[0] @ expected[0]) >= 0.9999, text


def test_onnx_batches_give_the_vectors_of_single_questions(onnx_embedder):
    questions = real_questions(8)
    assert len({len(q) for q in questions}) > 4  # different lengths: padding in the batch
    alone = np.vstack([onnx_embedder.encode([q]) for q in questions])
    assert np.allclose(onnx_embedder.encode(questions), alone, atol=1e-5)
    together = ask_together(onnx_embedder, questions)  # the leader/follower path, one onnx pass
    assert np.allclose(np.vstack(together), alone, atol=1e-5)


def test_onnx_encodes_questions_and_torch_encodes_passages(onnx_embedder, monkeypatch):
    torch_calls: list[int] = []
    torch_forward = onnx_embedder._torch_forward
    monkeypatch.setattr(
        onnx_embedder,
        "_torch_forward",
        lambda texts, show_progress=False: torch_calls.append(len(texts)) or torch_forward(texts),
    )
    onnx_embedder.encode(real_questions(3))
    assert torch_calls == []
    onnx_embedder.encode(real_questions(12))  # bulk: passages, as in `issqa eval` calibration
    assert torch_calls == [12]


def test_the_export_lands_in_the_cache_and_is_reused(onnx_embedder, onnx_cache, monkeypatch):
    path = onnx_embedder.onnx_path
    assert path.is_file() and path.parent.parent == onnx_cache
    assert path.parent.name.startswith("all-MiniLM-L6-v2-")
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no temporary file left
    written = path.stat().st_mtime_ns

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(embedding, "export_onnx", no_export)
    monkeypatch.setenv("ISSQA_ONNX_CACHE", str(onnx_cache))
    monkeypatch.setenv("ISSQA_BACKEND", "onnx")
    second = SentenceTransformerEmbedder(cache_size=0)  # both from the environment this time
    assert second.backend == "onnx" and second.onnx_path == path
    assert path.stat().st_mtime_ns == written
    question = real_questions(1)
    assert np.array_equal(second.encode(question), onnx_embedder.encode(question))


def test_a_second_export_replaces_the_file_whole_while_it_is_in_use(onnx_embedder):
    """Two workers starting together both export; the later rename must leave a valid file."""
    path = onnx_embedder.onnx_path
    before = path.stat().st_ino
    embedding.export_onnx(onnx_embedder._model, path)  # as a worker that found no file would
    assert path.stat().st_ino != before and [p.name for p in path.parent.iterdir()] == ["model.onnx"]
    question = real_questions(1)
    fresh = embedding.onnx_session(path)  # the new file loads ...
    features = onnx_embedder._tokenizer(question, return_tensors="np")
    feed = {i.name: features[i.name].astype(np.int64) for i in fresh.get_inputs()}
    vector = embedding.mean_pool(fresh.run(None, feed)[0], features["attention_mask"])
    assert float(vector[0] @ onnx_embedder.encode(question)[0]) >= 0.9999  # ... and the old session runs on


def test_the_cache_folder_follows_the_environment(tmp_path):
    assert embedding.onnx_cache_dir({"ISSQA_ONNX_CACHE": str(tmp_path)}) == tmp_path
    assert embedding.onnx_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "iss-qa" / "onnx"
    assert embedding.onnx_cache_dir({}) == Path.home() / ".cache" / "iss-qa" / "onnx"


def test_changed_weights_change_the_export_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = embedding.weights_fingerprint(None, str(tmp_path))
    assert embedding.weights_fingerprint(None, str(tmp_path)) == before
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))
    assert embedding.weights_fingerprint(None, str(tmp_path)) != before


@pytest.mark.parametrize("backend", ["tensorrt", "ONNX"])
def test_an_unknown_backend_is_a_clear_error(backend, monkeypatch):
    with pytest.raises(ConfigError, match="ISSQA_BACKEND must be one of torch, onnx"):
        SentenceTransformerEmbedder(backend=backend)  # refused before any model is loaded
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        Settings.from_config({"BACKEND": backend})
    monkeypatch.setenv("ISSQA_BACKEND", backend)
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        create_app({"TESTING": True})
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        load_embedder()


def test_an_empty_backend_setting_means_the_default(monkeypatch):
    monkeypatch.setenv("ISSQA_BACKEND", " ")
    assert embedding.default_backend() == "torch"
    assert get_engine(create_app({"TESTING": True})).settings.backend == "torch"


def test_the_app_passes_its_backend_to_the_model_loader(monkeypatch, tmp_path):
    loaded: list[tuple[str, str]] = []
    monkeypatch.setattr(engine_module, "load_embedder", lambda name, backend: loaded.append((name, backend)))
    monkeypatch.setenv("ISSQA_BACKEND", "onnx")
    engine = get_engine(create_app({"INDEX": tmp_path / "index"}))
    assert engine.settings.backend == "onnx"
    engine.embedder  # noqa: B018  (loads the model)
    assert loaded == [("all-MiniLM-L6-v2", "onnx")]
    assert get_engine(create_app({"BACKEND": "torch"})).settings.backend == "torch"  # the dict wins


def test_the_default_backend_shares_one_loaded_model(embedder, monkeypatch):
    monkeypatch.delenv("ISSQA_BACKEND", raising=False)
    assert load_embedder() is load_embedder(embedder.name, "torch")


def test_missing_onnxruntime_or_onnx_or_a_failed_export_is_a_clear_error(embedder, tmp_path, monkeypatch):
    model = embedder._model
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ConfigError, match="ISSQA_BACKEND=onnx needs onnxruntime"):
        embedding.onnx_model_path(model, embedder.name, tmp_path)
    monkeypatch.undo()

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ConfigError, match=r"ISSQA_BACKEND=onnx .* needs the onnx package"):
        embedding.export_onnx(model, tmp_path / "a" / "model.onnx")
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ConfigError, match=r"ISSQA_BACKEND=onnx: exporting .* unsupported operator"):
        embedding.export_onnx(model, tmp_path / "b" / "model.onnx")
    assert list((tmp_path / "b").iterdir()) == []  # the temporary file is gone, nothing half-written
