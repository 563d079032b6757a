"""The question-answering engine: a loaded model and index, and `ask()`, shared by HTTP and CLI.

It reloads the index when the manifest on disk changes, so a rebuild by another process (the CLI,
another worker, a background job) is picked up without a restart; questions keep being answered from
the loaded index while a rebuild runs.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answer import Answer, citations_for, compose
from .chunking import ChunkSettings
from .embedding import DEFAULT_BACKEND, DEFAULT_MODEL, Embedder, check_backend, load_embedder
from .errors import ConfigError, IndexNotReady
from .indexing import BuildReport, Progress, build_index, incompatibility, staleness
from .retrieval import CANDIDATES, MODES, gather, ordered
from .store import MANIFEST, BuildLock, Index, IndexMissing

DEFAULTS: dict[str, Any] = {
    "DOCUMENTS": "documents",
    "INDEX": "index",
    "MODEL": DEFAULT_MODEL,
    # What runs the model: onnx (its ONNX export on onnxruntime, no torch) or torch, the fallback.
    "BACKEND": DEFAULT_BACKEND,
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "TOP_K": 5,
    # Below this estimated probability that the answer is right, the documents are taken not to answer;
    # chosen from data by bench/train_confidence.py (docs/benchmarks.md).
    "MIN_CONFIDENCE": 0.26,
    "MAX_QUESTION_CHARS": 2000,
    # hybrid (dense + BM25, re-scored), dense or keyword: the last two exist for comparison.
    "RETRIEVAL": "hybrid",
    "CHUNK_TARGET_TOKENS": ChunkSettings.target_tokens,
    "CHUNK_MIN_TOKENS": ChunkSettings.min_tokens,
}


@dataclass(frozen=True)
class Settings:
    """The engine's configuration, read from a Flask-style config mapping."""

    documents: Path
    index: Path
    model: str
    top_k: int
    min_confidence: float
    max_question_chars: int
    chunking: ChunkSettings
    retrieval: str = "hybrid"
    backend: str = DEFAULT_BACKEND

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        def get(key: str) -> Any:
            return config.get(key, DEFAULTS[key])

        if get("RETRIEVAL") not in MODES:
            raise ConfigError(f"RETRIEVAL must be one of {', '.join(MODES)}, not {get('RETRIEVAL')!r}")
        backend = check_backend(str(get("BACKEND")).strip() or DEFAULT_BACKEND)  # empty: the default
        try:
            numbers = {key: float(get(key)) for key in ("TOP_K", "MIN_CONFIDENCE", "MAX_QUESTION_CHARS")}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid number in the configuration: {exc}") from None
        if not 1 <= numbers["TOP_K"] <= 20:
            raise ConfigError("TOP_K must be between 1 and 20")
        return cls(
            documents=Path(get("DOCUMENTS")).expanduser().resolve(),
            index=Path(get("INDEX")).expanduser().resolve(),
            model=str(get("MODEL")),
            top_k=int(get("TOP_K")),
            min_confidence=float(get("MIN_CONFIDENCE")),
            max_question_chars=int(get("MAX_QUESTION_CHARS")),
            retrieval=str(get("RETRIEVAL")),
            backend=backend,
            chunking=ChunkSettings(
                target_tokens=int(get("CHUNK_TARGET_TOKENS")),
                min_tokens=int(get("CHUNK_MIN_TOKENS")),
            ),
        )


class Engine:
    """Answers questions over the index in `settings.index`, loading the model and index lazily."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._index: Index | None = None
        self._loaded_mtime: float | None = None
        self._lock = threading.Lock()
        self._manifest = os.fspath(settings.index / MANIFEST)  # stat at every question: made once

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.model, self.settings.backend)
        return self._embedder

    def staleness(self) -> str | None:
        """Why the index on disk cannot serve the configuration, or None when it is current."""
        return staleness(
            self.settings.documents, self.settings.index, self.settings.model, self.settings.chunking
        )

    def build(
        self,
        full: bool = False,
        show_progress: bool = False,
        progress: Progress | None = None,
        lock: BuildLock | None = None,
    ) -> BuildReport:
        """Bring the index in step with the documents folder (incrementally unless `full`), then serve it."""
        report = build_index(
            self.settings.documents,
            self.settings.index,
            self.embedder,
            self.settings.chunking,
            show_progress=show_progress,
            full=full,
            progress=progress,
            lock=lock,
        )
        self.index(reload=True)
        return report

    def index(self, reload: bool = False) -> Index:
        """The loaded index, reloaded when its manifest changed on disk since it was loaded."""
        try:
            mtime = os.stat(self._manifest).st_mtime_ns
        except OSError:
            mtime = None
        if self._index is not None and mtime == self._loaded_mtime and not reload:
            return self._index
        with self._lock:
            if self._index is None or mtime != self._loaded_mtime or reload:
                try:
                    index = Index(self.settings.index)
                except IndexMissing as exc:
                    if self._index is not None:
                        return self._index  # keep answering from the index already loaded
                    raise IndexNotReady(
                        f"{exc}. Build it with 'issqa index' (or start the server with 'issqa serve')."
                    ) from None
                # An index behind the documents still answers (a rebuild may be on its way, and
                # status reports it); one built for another model or chunking cannot.
                reason = incompatibility(
                    index.manifest, self.settings.model, self.settings.chunking, self.embedder.dimensions
                )
                if reason:
                    raise IndexNotReady(f"the index is stale ({reason}); rebuild it with 'issqa index'.")
                self._index, self._loaded_mtime = index, mtime
        return self._index

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        history: Sequence[dict[str, str]] = (),
        min_confidence: float | None = None,
    ) -> Answer:
        """Answer `question` from the documents, citing the `top_k` best passages.

        `history` is the conversation so far; it resolves follow-ups like "Who replaced him?".
        `min_confidence` overrides the configured threshold (`issqa eval` drafts every answer at 0).
        When nothing is quoted, a question on its own lists the passages in the `closest` order, the
        likeliest to hold the answer first; a follow-up keeps the conversation's order.
        """
        started = time.perf_counter()
        index = self.index()
        k = top_k or self.settings.top_k
        threshold = self.settings.min_confidence if min_confidence is None else min_confidence
        query, found = gather(index, self.embedder, question, history, max(k, CANDIDATES))
        answer = compose(query, ordered(index, query, found, k, self.settings.retrieval), threshold)
        if not answer.answered and self.settings.retrieval == "hybrid" and not query.context:
            listed = ordered(index, query, found, k, "closest")
            answer = dataclasses.replace(answer, citations=citations_for(listed))
        return dataclasses.replace(answer, took_ms=round((time.perf_counter() - started) * 1000, 1))
