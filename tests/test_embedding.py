"""The embedder: questions asked at the same moment share one forward pass, with the same vectors.

The default backend (onnx: the model's ONNX export on onnxruntime, no torch) gives torch's vectors for
questions, passages and late-chunked sentences, so either backend serves an index built by the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
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
from service.chunking import ChunkSettings
from service.documents import Document, load_documents
from service.embedding import OnnxEmbedder, SentenceTransformerEmbedder, load_embedder
from service.engine import Settings
from service.errors import ConfigError
from service.indexing import embed_documents

QUESTIONS = [
    "Who replaced Rogozin as head of Roskosmos?",
    "Which cosmonaut flies on a SpaceX rocket?",
    "How far above the Earth does the station orbit?",
    "When was the extra Soyuz flight agreed?",
    "What did the Kremlin say about the agreement?",
    "Why did Russia threaten to leave the ISS?",
]


@pytest.fixture
def batching(embedder) -> OnnxEmbedder:
    """A fresh embedder (empty queue, no cache) sharing the session's loaded model."""
    fresh = type(embedder).__new__(type(embedder))
    fresh.__dict__.update(embedder.__dict__)
    fresh.cache_size = 0
    fresh._lock = threading.Lock()
    fresh._queue_lock = threading.Lock()
    fresh._queue = type(embedder._queue)()
    return fresh


def ask_together(embedder: embedding.AnyEmbedder, questions: list[str]) -> list:
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


class WatchedSession:
    """The model's session, holding each run until the caller's work beside it has started."""

    def __init__(self, session, started: threading.Event) -> None:
        self._session = session
        self.running = threading.Event()
        self.started = started

    def __getattr__(self, name: str):
        return getattr(self._session, name)

    def run(self, *args):
        self.running.set()
        self.started.wait(5)  # held for the work beside it; five seconds' wait if that never comes
        return self._session.run(*args)


def test_a_lone_questions_work_runs_on_another_thread_while_the_model_runs(batching, embedder):
    started = threading.Event()
    batching._question_session = WatchedSession(embedder._question_session, started)
    seen: list[tuple[bool, int]] = []

    def work() -> None:
        started.set()
        seen.append((batching._question_session.running.wait(5), threading.get_ident()))

    began = time.monotonic()
    vectors = batching.encode([QUESTIONS[0]], during=work)
    assert seen == [(True, seen[0][1])] and seen[0][1] != threading.get_ident()
    assert time.monotonic() - began < 4, "the model waited for the work instead of running beside it"
    assert np.array_equal(vectors, embedder._forward([QUESTIONS[0]]))


def test_work_beside_the_model_runs_in_the_callers_thread_when_the_model_is_shared_or_not_needed(
    batching,
):
    def encode_with_work(texts: list[str]) -> tuple[int, list[int]]:
        ran: list[int] = []
        batching.encode(texts, during=lambda: ran.append(threading.get_ident()))
        return threading.get_ident(), ran

    with ThreadPoolExecutor(3) as pool:
        with batching._lock:  # the model is busy: the three queue and share one pass
            futures = [pool.submit(encode_with_work, [q]) for q in QUESTIONS[:3]]
            deadline = time.monotonic() + 10
            while len(batching._queue) < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
        for future in futures:
            caller, ran = future.result()
            assert ran == [caller]
    batching.cache_size = 8
    batching.encode([QUESTIONS[4]])
    me = threading.get_ident()
    assert encode_with_work([QUESTIONS[4]]) == (me, [me])  # from the cache: no pass
    assert encode_with_work([]) == (me, [me])
    assert encode_with_work(QUESTIONS[:2] * 5) == (me, [me])  # bulk: passages, not a lone question


def test_an_error_in_the_work_beside_the_model_reaches_its_caller_and_the_next_question_works(
    batching, embedder
):
    def broken() -> None:
        raise ValueError("keyword search failed")

    with pytest.raises(ValueError, match="keyword search failed"):
        batching.encode([QUESTIONS[0]], during=broken)
    again = batching.encode([QUESTIONS[1]], during=lambda: None)
    assert np.array_equal(again, embedder._forward([QUESTIONS[1]]))


def test_a_forked_process_makes_its_own_helper_thread(batching):
    # A forked worker inherits its parent's executor but not the executor's thread; the helper is
    # made again in a process that did not make it.
    inherited = ThreadPoolExecutor(1)
    inherited.shutdown()
    batching._beside = (-1, inherited)
    ran: list[int] = []
    batching.encode([QUESTIONS[0]], during=lambda: ran.append(threading.get_ident()))
    assert ran and batching._beside[0] == os.getpid() and batching._beside[1] is not inherited


# The two backends: the same vectors, so an index built by either serves the other.

ROOT = Path(__file__).resolve().parents[1]


def real_questions(count: int = 10) -> list[str]:
    """Questions from the project's own evaluation set, of varied lengths."""
    lines = (ROOT / "evals" / "iss-news" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:count]]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    """The fallback backend: sentence-transformers on torch (no question cache)."""
    return SentenceTransformerEmbedder(cache_size=0, device="cpu")


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path) -> OnnxEmbedder:
    """The default backend's fp32 export, made afresh in a temporary cache, for questions too (no cache)."""
    return OnnxEmbedder(onnx_cache=onnx_cache, cache_size=0, device="cpu", question_precision="fp32")


def test_the_default_backend_is_onnx(embedder, monkeypatch):
    monkeypatch.delenv("ISSQA_BACKEND", raising=False)
    assert embedding.default_backend() == "onnx"
    assert isinstance(embedder, OnnxEmbedder) and embedder.backend == "onnx"


def test_onnx_question_vectors_match_torch(onnx_embedder, torch_embedder):
    questions = real_questions()
    long_text = next((ROOT / "documents").glob("*.txt")).read_text(encoding="utf-8")
    assert torch_embedder.count_tokens(long_text) > torch_embedder.max_tokens  # truncated alike by both
    texts = [*questions, long_text]
    got, expected = onnx_embedder.encode(texts), torch_embedder.encode(texts)  # bulk: one batch each
    assert got.dtype == np.float32 and got.shape == (len(texts), torch_embedder.dimensions)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= embedding.MIN_COSINE, texts[int(cosines.argmin())]
    alone = np.vstack([onnx_embedder.encode([q]) for q in questions])  # one at a time: the same
    assert np.sum(alone * expected[: len(questions)], axis=1).min() >= embedding.MIN_COSINE


def test_onnx_passage_and_sentence_vectors_match_torch(onnx_embedder, torch_embedder):
    """The build's own path (chunk, embed passages, late-chunk sentences) over the real articles."""
    docs = [d for d in load_documents(ROOT / "documents") if isinstance(d, Document)]
    got = embed_documents(docs, onnx_embedder, ChunkSettings(), 0)
    expected = embed_documents(docs, torch_embedder, ChunkSettings(), 0)
    assert [(p.start, p.end) for p in got.passages] == [(p.start, p.end) for p in expected.passages]
    assert len(got.passages) > 10
    assert np.sum(got.vectors * expected.vectors, axis=1).min() >= embedding.MIN_COSINE
    ours = np.vstack([s.vector for sentences in got.sentences for s in sentences])
    theirs = np.vstack([s.vector for sentences in expected.sentences for s in sentences])
    assert len(ours) > len(got.passages)  # several sentences a passage
    assert np.sum(ours * theirs, axis=1).min() >= embedding.MIN_COSINE
    for p in got.passages:
        assert onnx_embedder.count_tokens(p.text) == torch_embedder.count_tokens(p.text)


def test_onnx_batches_give_the_vectors_of_single_questions(onnx_embedder):
    questions = real_questions(8)
    assert len({len(q) for q in questions}) > 4  # different lengths: padding in the batch
    alone = np.vstack([onnx_embedder.encode([q]) for q in questions])
    assert np.allclose(onnx_embedder.encode(questions), alone, atol=1e-5)
    together = ask_together(onnx_embedder, questions)  # the leader/follower path, one onnx pass
    assert np.allclose(np.vstack(together), alone, atol=1e-5)


def test_int8_questions_go_through_the_quantised_model_and_passages_through_fp32(onnx_embedder):
    """ISSQA_QUESTION_PRECISION=int8: a question's vector from the export quantised per channel, close
    to fp32's, the same alone or in a batch; the passages' and sentences' vectors (the index) fp32's."""
    cache = onnx_embedder.onnx_path.parent.parent
    int8 = OnnxEmbedder(onnx_cache=cache, cache_size=0, device="cpu", question_precision="int8")
    assert int8.question_precision == "int8" and int8.onnx_path == onnx_embedder.onnx_path
    questions = real_questions(20)
    cosines = np.sum(int8.encode(questions) * onnx_embedder.encode(questions), axis=1)
    assert (onnx_embedder.onnx_path.parent / embedding.INT8_FILE).is_file()  # made for the first question
    # Quantised, not the same model: close (0.988 at worst on 200 SQuAD questions), never identical.
    assert cosines.min() >= 0.98 and cosines.max() < embedding.MIN_COSINE
    alone = np.vstack([int8.encode([q]) for q in questions[:8]])
    assert np.allclose(int8.encode(questions[:8]), alone, atol=1e-5)  # batches give the vectors of singles
    docs = [d for d in load_documents(ROOT / "documents") if isinstance(d, Document)][:1]
    got = embed_documents(docs, int8, ChunkSettings(), 0)
    expected = embed_documents(docs, onnx_embedder, ChunkSettings(), 0)
    assert np.array_equal(got.vectors, expected.vectors)
    for ours, theirs in zip(got.sentences, expected.sentences, strict=True):
        assert all(np.array_equal(a.vector, b.vector) for a, b in zip(ours, theirs, strict=True))


def test_the_int8_model_is_reproducible_and_follows_the_export(onnx_embedder, tmp_path):
    """The same export gives the same int8 bytes, no temporary file left; a newer export is quantised again."""
    made = embedding.int8_model_path(onnx_embedder.onnx_path)
    again = tmp_path / embedding.INT8_FILE
    embedding.quantize(onnx_embedder.onnx_path, again)
    assert again.read_bytes() == made.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [embedding.INT8_FILE]
    export = tmp_path / "model.onnx"
    shutil.copy(onnx_embedder.onnx_path, export)
    os.utime(again, ns=(1, 1))  # older than the export beside it: made from an earlier one
    assert embedding.int8_model_path(export) == again and again.stat().st_mtime_ns > 1
    assert again.read_bytes() == made.read_bytes()


def test_the_question_precision_is_a_setting(onnx_embedder, monkeypatch):
    monkeypatch.setenv("ISSQA_DEVICE", "cpu")  # int8 is for the CPU: a GPU would run questions in fp32
    embedding._load_embedder.cache_clear()  # not the session's embedder: this one's cache folder
    assert embedding.default_precision({"ISSQA_QUESTION_PRECISION": " INT8 "}) == "int8"
    assert embedding.default_precision({}) == "fp32"
    with pytest.raises(ConfigError, match="ISSQA_QUESTION_PRECISION must be one of fp32, int8, not 'int4'"):
        embedding.check_precision("int4")
    monkeypatch.setenv("ISSQA_ONNX_CACHE", str(onnx_embedder.onnx_path.parent.parent))
    monkeypatch.setenv("ISSQA_QUESTION_PRECISION", "int4")
    with pytest.raises(ConfigError, match="ISSQA_QUESTION_PRECISION"):
        load_embedder()
    monkeypatch.setenv("ISSQA_QUESTION_PRECISION", "int8")
    int8 = load_embedder()
    assert isinstance(int8, OnnxEmbedder) and int8.question_precision == "int8"
    monkeypatch.delenv("ISSQA_QUESTION_PRECISION")
    fp32 = load_embedder()  # the default
    assert isinstance(fp32, OnnxEmbedder) and fp32.question_precision == "fp32"
    question = real_questions(1)
    assert np.array_equal(fp32._forward(question), onnx_embedder._forward(question))
    assert not np.array_equal(int8._forward(question), fp32._forward(question))
    embedding._load_embedder.cache_clear()  # later tests get the default again


def test_prepare_makes_the_int8_model_once(onnx_embedder, tmp_path, monkeypatch):
    """With int8 questions, `make` (prepare) quantises beside the export; serving finds nothing to make."""
    cache = tmp_path / "cache"
    folder = cache / onnx_embedder.onnx_path.parent.name
    folder.mkdir(parents=True)
    shutil.copy(onnx_embedder.onnx_path, folder / "model.onnx")  # exported already, not yet quantised
    monkeypatch.setenv("ISSQA_ONNX_CACHE", str(cache))
    monkeypatch.delenv("ISSQA_QUESTION_PRECISION", raising=False)
    assert not embedding.needs_export(onnx_embedder.name, "onnx")  # fp32 (the default) needs no int8 file
    assert embedding.prepare(backend="onnx") == folder / "model.onnx"
    assert not (folder / embedding.INT8_FILE).exists()
    monkeypatch.setenv("ISSQA_QUESTION_PRECISION", "int8")
    assert embedding.needs_export(onnx_embedder.name, "onnx")
    assert embedding.prepare(backend="onnx") == folder / "model.onnx"
    assert (folder / embedding.INT8_FILE).is_file() and not embedding.needs_export(onnx_embedder.name, "onnx")
    made = (folder / embedding.INT8_FILE).stat().st_mtime_ns
    assert embedding.prepare(backend="onnx") == folder / "model.onnx"
    assert (folder / embedding.INT8_FILE).stat().st_mtime_ns == made  # once


def test_the_export_lands_in_the_cache_and_is_reused(onnx_embedder, onnx_cache, monkeypatch):
    path = onnx_embedder.onnx_path
    assert path.is_file() and path.parent.parent == onnx_cache
    assert path.parent.name.startswith("all-MiniLM-L6-v2-")
    assert {p.name for p in path.parent.iterdir()} <= {"model.onnx", embedding.INT8_FILE}  # no temporary file
    written = path.stat().st_mtime_ns

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(embedding, "export_onnx", no_export)
    monkeypatch.setenv("ISSQA_ONNX_CACHE", str(onnx_cache))
    assert embedding.prepare(backend="onnx") == path and not embedding.needs_export(
        onnx_embedder.name, "onnx"
    )
    second = OnnxEmbedder(cache_size=0, question_precision="fp32")  # the cache folder from the environment
    assert second.onnx_path == path and path.stat().st_mtime_ns == written
    question = real_questions(1)
    assert np.array_equal(second.encode(question), onnx_embedder.encode(question))


def test_the_export_is_reproducible_and_replaces_the_file_whole_while_in_use(onnx_embedder, torch_embedder):
    """The same model gives the same bytes; a second export (two workers starting together) swaps whole."""
    path = onnx_embedder.onnx_path
    before_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    before = path.stat().st_ino
    embedding.export_onnx(torch_embedder._model, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before_hash
    assert path.stat().st_ino != before
    assert {p.name for p in path.parent.iterdir()} <= {"model.onnx", embedding.INT8_FILE}
    question = real_questions(1)
    fresh = OnnxEmbedder(onnx_cache=path.parent.parent, cache_size=0, question_precision="fp32")  # loads ...
    assert np.allclose(fresh.encode(question), onnx_embedder.encode(question), atol=1e-6)  # ... the old runs


def test_the_cache_folder_follows_the_environment(tmp_path):
    assert embedding.onnx_cache_dir({"ISSQA_ONNX_CACHE": str(tmp_path)}) == tmp_path
    assert embedding.onnx_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "iss-qa" / "onnx"
    assert embedding.onnx_cache_dir({}) == Path.home() / ".cache" / "iss-qa" / "onnx"


def test_changed_weights_change_the_export_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = embedding.weights_fingerprint(tmp_path)
    assert embedding.weights_fingerprint(tmp_path) == before
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))
    assert embedding.weights_fingerprint(tmp_path) != before


def test_a_model_onnx_cannot_reproduce_is_refused_with_the_fallback_named(tmp_path):
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ConfigError, match=r"mean Pooling .* Use ISSQA_BACKEND=torch"):
        embedding.model_spec(tmp_path, "cls-model")


@pytest.mark.parametrize("backend", ["tensorrt", "ONNX"])
def test_an_unknown_backend_is_a_clear_error(backend, monkeypatch):
    with pytest.raises(ConfigError, match="ISSQA_BACKEND must be one of onnx, torch"):
        load_embedder(backend=backend)  # refused before any model is loaded
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        Settings.from_config({"BACKEND": backend})
    monkeypatch.setenv("ISSQA_BACKEND", backend)
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        create_app({"TESTING": True})
    with pytest.raises(ConfigError, match="ISSQA_BACKEND"):
        load_embedder()


def test_an_empty_backend_setting_means_the_default(monkeypatch):
    monkeypatch.setenv("ISSQA_BACKEND", " ")
    assert embedding.default_backend() == "onnx"
    assert get_engine(create_app({"TESTING": True})).settings.backend == "onnx"


def test_the_app_passes_its_backend_to_the_model_loader(monkeypatch, tmp_path):
    loaded: list[tuple[str, str]] = []
    monkeypatch.setattr(engine_module, "load_embedder", lambda name, backend: loaded.append((name, backend)))
    monkeypatch.setenv("ISSQA_BACKEND", "torch")
    engine = get_engine(create_app({"INDEX": tmp_path / "index"}))
    assert engine.settings.backend == "torch"
    engine.embedder  # noqa: B018  (loads the model)
    assert loaded == [("all-MiniLM-L6-v2", "torch")]
    assert get_engine(create_app({"BACKEND": "onnx"})).settings.backend == "onnx"  # the dict wins


def test_the_default_backend_shares_one_loaded_model(embedder, monkeypatch):
    monkeypatch.delenv("ISSQA_BACKEND", raising=False)
    monkeypatch.delenv("ISSQA_DEVICE", raising=False)
    assert load_embedder() is load_embedder(embedder.name, "onnx")


# ISSQA_DEVICE=auto|cpu|cuda


@pytest.mark.parametrize("device", ["gpu", "CUDA:0", "tpu"])
def test_an_unknown_device_is_a_clear_error(device, monkeypatch):
    monkeypatch.setenv("ISSQA_DEVICE", device)
    with pytest.raises(ConfigError, match="ISSQA_DEVICE must be one of auto, cpu, cuda"):
        load_embedder()
    with pytest.raises(ConfigError, match="ISSQA_DEVICE must be one of auto, cpu, cuda"):
        OnnxEmbedder(cache_size=0)


def test_the_cpu_device_runs_both_backends_on_the_cpu(embedder, torch_embedder, monkeypatch):
    assert embedding.onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert torch_embedder.device == "cpu" and torch_embedder._model.device.type == "cpu"
    monkeypatch.setenv("ISSQA_DEVICE", "cpu")
    on_cpu = OnnxEmbedder(cache_size=0)
    assert on_cpu.device == "cpu" and on_cpu._session.get_providers() == ["CPUExecutionProvider"]
    int8 = OnnxEmbedder(cache_size=0, question_precision="int8")
    assert int8.question_precision == "int8"
    assert int8._question_model().get_providers() == ["CPUExecutionProvider"]
    question = real_questions(1)
    assert np.allclose(on_cpu.encode(question), embedder.encode(question), atol=1e-6)


def test_auto_uses_cuda_only_where_there_is_one_and_cuda_insists():
    import onnxruntime

    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    assert embedding.onnx_providers("auto")[0] == (
        "CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider"
    )
    assert embedding.torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not has_cuda:
        with pytest.raises(ConfigError, match="ISSQA_DEVICE=cuda, but onnxruntime has no CUDA"):
            embedding.onnx_providers("cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="ISSQA_DEVICE=cuda, but torch sees no CUDA device"):
            embedding.torch_device("cuda")


# Torch stays out of processes that do not use it.


def test_the_onnx_backend_never_imports_torch(news_index, tmp_path):
    """A serving worker's own start-up (serving.load_app), a question, and a rebuild, in a fresh process."""
    script = (
        "import sys\n"
        "from service import get_engine, serving\n"
        "serving.set_torch_threads(1)\n"
        f"app = serving.load_app({{'DOCUMENTS': {str(news_index['DOCUMENTS'])!r}, 'INDEX': sys.argv[1]}})\n"
        "engine = get_engine(app)\n"
        "engine.build(full=True)\n"
        "reply = app.test_client().post('/api/ask', json={'question': 'Who replaced Rogozin?'}).get_json()\n"
        "assert reply['answered'], reply\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sentence_transformers')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSQA_")}
    index = tmp_path / "index"
    shutil.copytree(news_index["INDEX"], index)
    result = subprocess.run(
        [sys.executable, "-c", script, str(index)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_missing_onnxruntime_or_onnx_or_a_failed_export_is_a_clear_error(
    torch_embedder, tmp_path, monkeypatch
):
    model = torch_embedder._model
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ConfigError, match="ISSQA_BACKEND=onnx needs onnxruntime"):
        embedding.onnx_model_path(torch_embedder.name, tmp_path)
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


def test_the_random_model_for_speed_runs_loads_like_the_packaged_one(tmp_path, embedder):
    # bench/random_model.py stands in for the packaged model where it cannot travel (the device run of
    # bench/device_layouts.sh): the same tokenizer and shapes, weights from a fixed seed.
    from .conftest import bench_script

    random_model = bench_script("random_model")
    first, second = tmp_path / "first", tmp_path / "second"
    random_model.make(random_model.packaged(), first)
    random_model.make(random_model.packaged(), second)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    packaged_tokenizer = random_model.packaged() / "tokenizer.json"
    assert (first / "tokenizer.json").read_bytes() == packaged_tokenizer.read_bytes()
    texts = ["Who replaced Rogozin?", "The new head of the Russian space agency will be Yuri Borisov."]
    stand_in = SentenceTransformerEmbedder(str(first))
    vectors, real = stand_in.encode(texts), embedder.encode(texts)
    assert vectors.shape == real.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * real).sum(axis=1).max()) < 0.9, "its weights are not the packaged ones"


def test_a_new_export_prunes_the_oldest_of_the_same_model(tmp_path):
    # A reinstall changes the weights' fingerprint and exports anew; without pruning the cache grows
    # by a whole model each time. The newest KEPT_EXPORTS of the model stay; other models are untouched.
    def export(name: str, age: int) -> Path:
        path = tmp_path / name / "model.onnx"
        path.parent.mkdir()
        path.write_bytes(b"onnx")
        os.utime(path, ns=(10**18 - age, 10**18 - age))
        return path

    old = [export(f"all-MiniLM-L6-v2-{i:016x}", age=i + 1) for i in range(5)]  # old[0] the newest
    others = [export("all-MiniLM-L6-v2-tuned-00000000000000aa", age=9), export("other-00000000000000bb", 9)]
    half_written = tmp_path / "all-MiniLM-L6-v2-00000000000000cc"  # no model.onnx: not an export
    half_written.mkdir()
    current = export("all-MiniLM-L6-v2-00000000000000ff", age=100)  # just written, its mtime set aside

    removed = embedding.prune_exports(current)

    assert sorted(removed) == sorted(p.parent for p in old[embedding.KEPT_EXPORTS - 1 :])
    assert current.is_file() and all(p.is_file() for p in old[: embedding.KEPT_EXPORTS - 1])
    assert not any(p.exists() for p in old[embedding.KEPT_EXPORTS - 1 :])
    assert all(p.is_file() for p in others) and half_written.is_dir()
