"""Index builds on a Ray cluster: the documents to (re)embed are read, chunked and embedded by Ray Data.

Only embedding needs more than one machine, so only it moves: this process (the driver) hashes the
files to find the new and changed ones, a Ray Data pipeline runs `map_batches` over a pool of actors
that each load the model once and read, chunk and embed whole documents with the same code as a
local build (`indexing.embed_documents`), and the ids, vectors and passage rows come back here, where
`indexing.build_index` writes the ordinary index folder (same manifest, lock, atomic swap and
incremental rules). Every node reads the documents folder at the driver's path, so it must be shared
or copied there, as the index folder is for replicas. Ray is optional: `pip install 'iss-qa[ray]'`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import ChunkSettings
from .documents import Document, Pending, Skipped, Unchanged, read_document, survey
from .embedding import Embedder
from .errors import IssqaError
from .indexing import BuildReport, Embedded, Progress, build_index, embed_documents
from .store import Batch, BuildLock, Passage, Sentence

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'iss-qa[ray]'"
DEFAULT_BATCH_SIZE = 16  # documents per batch handed to an actor, at most
# The actors run the model with torch, which can use a GPU wherever the cluster has one.
BACKEND = "torch"
BATCHES_PER_ACTOR = 4  # smaller batches when there are few documents, so that every actor gets work


class RayMissing(IssqaError):
    """Ray is not installed; the message says what to install."""


def require_ray() -> Any:
    """Import Ray Data, or raise `RayMissing` at once with the line that says what to install."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayMissing(INSTALL_HINT) from None
    return ray


@dataclass
class Cluster:
    """Where embedding ran: the nodes and actors that returned documents, for the build's summary."""

    nodes: set[str] = field(default_factory=set)
    actors: set[str] = field(default_factory=set)
    gpus_per_actor: float = 0.0

    def summary(self) -> str:
        device = f", {self.gpus_per_actor:g} GPU each" if self.gpus_per_actor else ""
        return (
            f"Embedded on the Ray cluster by {_count(len(self.actors), 'actor')}{device} "
            f"on {_count(len(self.nodes), 'node')}."
        )


def scan(
    folder: Path, known: Mapping[str, tuple[str, str]]
) -> tuple[dict[str, str], list[Skipped], list[Pending]]:
    """Hash every candidate file: unchanged ones are reused, the rest go to the cluster unparsed."""
    unchanged: dict[str, str] = {}
    skipped: list[Skipped] = []
    pending: list[Pending] = []
    for item in survey(folder, known):
        if isinstance(item, Unchanged):
            unchanged[item.path] = item.sha256
        elif isinstance(item, Skipped):
            skipped.append(item)
        else:
            pending.append(item)
    return unchanged, skipped, pending


class EmbedDocuments:
    """The Ray Data actor: loads the model once, then reads, chunks and embeds batches of documents.

    Each output row is one document: its fields (or why it was skipped), its passages' offsets and
    sentence spans, and its passage and sentence vectors as float32 bytes, with the node and actor that
    did the work.
    """

    def __init__(self, folder: str, model: str, chunking: dict[str, Any]) -> None:
        import ray

        from .embedding import load_embedder

        self.folder = Path(folder)
        self.settings = ChunkSettings(**chunking)
        self.embedder = load_embedder(model, BACKEND)
        context = ray.get_runtime_context()
        self.node = context.get_node_id()
        self.actor = context.get_actor_id() or ""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict[str, Any]] = []
        docs: list[Document] = []
        for order, path, doc_id in zip(batch["order"], batch["path"], batch["id"], strict=True):
            row: dict[str, Any] = {"order": int(order), "path": str(path), "error": "", "sha256": ""}
            try:
                read = read_document((self.folder / str(path)).read_bytes(), str(path), str(doc_id))
            except OSError as exc:
                read = Skipped(str(path), f"cannot read file ({exc.strerror})", "")
            if isinstance(read, Skipped):
                row.update(error=read.reason, sha256=read.sha256)
            else:
                docs.append(read)
                row["document"] = read
            rows.append(row)
        embedded = embed_documents(docs, self.embedder, self.settings, first_id=0)
        by_document: dict[str, list[int]] = {}
        for i, passage in enumerate(embedded.passages):
            by_document.setdefault(passage.document_id, []).append(i)
        vectors = embedded.vectors if embedded.vectors is not None else np.zeros((0, 0), np.float32)
        out: dict[str, list[Any]] = {key: [] for key in _COLUMNS}
        for row in rows:
            doc = row.pop("document", None)
            mine = by_document.get(doc.id, []) if doc else []
            sentences = [embedded.sentences[i] for i in mine]
            sentence_vectors = [s.vector for group in sentences for s in group]
            row.update(
                document=json.dumps(dataclasses.asdict(doc)) if doc else "",
                passages=json.dumps(
                    [
                        [
                            embedded.passages[i].start,
                            embedded.passages[i].end,
                            [[s.start, s.end] for s in group],
                        ]
                        for i, group in zip(mine, sentences, strict=True)
                    ]
                ),
                vectors=np.ascontiguousarray(vectors[mine], dtype=np.float32).tobytes(),
                sentence_vectors=np.asarray(sentence_vectors, dtype=np.float32).tobytes(),
                node=self.node,
                actor=self.actor,
            )
            for key in _COLUMNS:
                out[key].append(row[key])
        return {key: np.array(values, dtype=object) for key, values in out.items()}


_COLUMNS = (
    "order",
    "path",
    "sha256",
    "error",
    "document",
    "passages",
    "vectors",
    "sentence_vectors",
    "node",
    "actor",
)


@dataclass
class RayEmbed:
    """An `indexing.Embed` that runs on a Ray cluster; `cluster` says where the work ran afterwards.

    `address` is what `ray.init` takes: "auto" joins the cluster this machine belongs to, "local" starts
    a throwaway one in this process, "HOST:PORT" joins that head node. `actors` defaults to one per CPU
    (one per GPU when the cluster has GPUs); `batch_size` is the most documents per batch handed to an
    actor (fewer when there are few documents, so that every actor gets several batches).
    """

    address: str
    model: str
    dimensions: int
    actors: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    show_progress: bool = False
    progress: Progress | None = None  # (documents embedded so far, documents to embed)
    chunking: dict[str, Any] = field(default_factory=lambda: dataclasses.asdict(ChunkSettings()))
    cluster: Cluster = field(default_factory=Cluster)

    def __call__(self, folder: Path, known: Mapping[str, tuple[str, str]], first_id: int) -> Embedded:
        unchanged, skipped, pending = scan(folder, known)
        if not pending:
            return Embedded(
                unchanged, skipped, Batch(vectors=np.zeros((0, self.dimensions), np.float32)), BACKEND
            )
        rows = self._run(folder, pending)
        docs: list[Document] = []
        passages: list[Passage] = []
        vectors: list[np.ndarray] = []
        sentences: list[list[Sentence]] = []
        for row in sorted(rows, key=lambda r: int(r["order"])):  # the local build's order, hence its ids
            if row["error"]:
                skipped.append(Skipped(str(row["path"]), str(row["error"]), str(row["sha256"])))
                continue
            fields = json.loads(row["document"])
            doc = Document(**{**fields, "pages": tuple(fields["pages"])})
            spans = json.loads(row["passages"])
            doc_vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(spans), self.dimensions)
            flat = np.frombuffer(row["sentence_vectors"], dtype=np.float32).reshape(-1, self.dimensions)
            used = 0
            for (start, end, sentence_spans), vector in zip(spans, doc_vectors, strict=True):
                passages.append(Passage(first_id + len(passages), doc.id, start, end, doc.text[start:end]))
                vectors.append(vector)
                sentences.append(
                    [Sentence(a, b, flat[used + k].copy()) for k, (a, b) in enumerate(sentence_spans)]
                )
                used += len(sentence_spans)
            docs.append(doc)
        skipped.sort(key=lambda s: s.path)
        matrix = np.vstack(vectors) if vectors else np.zeros((0, self.dimensions), np.float32)
        return Embedded(unchanged, skipped, Batch(docs, passages, matrix, sentences), BACKEND)

    def _run(self, folder: Path, pending: list[Pending]) -> list[dict[str, Any]]:
        """The Ray Data pipeline: pending files in, one row per document out, collected as they finish."""
        ray = require_ray()
        from ray.data import ActorPoolStrategy, DataContext

        started_here = not ray.is_initialized()
        if started_here:
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ warnings, not ours
            ray.init(
                address=self.address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
            )
        try:
            context = DataContext.get_current()
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            resources = ray.cluster_resources()
            gpus = float(resources.get("GPU", 0))
            actors = self.actors or max(1, int(gpus or resources.get("CPU", 1)))
            self.cluster.gpus_per_actor = 1.0 if gpus >= actors else (gpus / actors if gpus else 0.0)
            items = [{"order": i, "path": p.path, "id": p.id} for i, p in enumerate(pending)]
            size = max(1, min(self.batch_size, math.ceil(len(items) / (actors * BATCHES_PER_ACTOR))))
            dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / size))
            embedded = dataset.map_batches(
                EmbedDocuments,
                fn_constructor_kwargs={
                    "folder": str(folder.resolve()),
                    "model": self.model,
                    "chunking": self.chunking,
                },
                batch_size=size,
                batch_format="numpy",
                compute=ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
                num_cpus=1,
                num_gpus=self.cluster.gpus_per_actor or None,
                # Actors go on every node, not packed onto the first: Ray Data's actor pools are
                # scheduled with its default strategy, "SPREAD" (passing it here is deprecated).
            )
            return list(self._collect(embedded.iter_rows(), len(pending)))
        except IssqaError:
            raise
        except Exception as exc:
            raise IssqaError(
                f"the Ray build failed, the index was left as it was: {_first_line(exc)}"
            ) from exc
        finally:
            if started_here:
                ray.shutdown()

    def _collect(self, rows: Iterator[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
        """Yield the cluster's rows while showing the same progress bar as a local build, per document."""
        bar = None
        if self.show_progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="Embedding", unit="document", file=sys.stderr)
        if self.progress:
            self.progress(0, total)
        try:
            for done, row in enumerate(rows, 1):
                self.cluster.nodes.add(str(row["node"]))
                self.cluster.actors.add(str(row["actor"]))
                if bar is not None:
                    bar.update(1)
                if self.progress:
                    self.progress(done, total)
                yield row
        finally:
            if bar is not None:
                bar.close()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def build_on_ray(
    address: str,
    documents_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings = ChunkSettings(),
    *,
    full: bool = False,
    actors: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool = False,
    progress: Progress | None = None,
    lock: BuildLock | None = None,
) -> tuple[BuildReport, Cluster]:
    """`indexing.build_index` with reading, chunking and embedding on the Ray cluster at `address`.

    `embedder` is used here only for its name and dimensions (the manifest and the staleness rules);
    the actors load the same model by name.
    """
    require_ray()
    if actors is not None and actors < 1:
        raise IssqaError("the number of Ray actors must be at least 1")
    if batch_size < 1:
        raise IssqaError("the Ray batch size must be at least 1")
    embed = RayEmbed(
        address,
        embedder.name,
        embedder.dimensions,
        actors=actors,
        batch_size=batch_size,
        show_progress=show_progress,
        progress=progress,
        chunking=dataclasses.asdict(settings),
    )
    report = build_index(documents_dir, index_dir, embedder, settings, full=full, lock=lock, embed=embed)
    return report, embed.cluster
