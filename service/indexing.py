"""Building the index from the documents folder, and telling whether an existing one is stale."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .chunking import ChunkSettings, chunk, sentences
from .documents import Document, Skipped, Unchanged, boilerplate, fingerprint, load_documents
from .embedding import Embedder, compatibility
from .store import (
    Batch,
    BuildLock,
    Index,
    IndexMissing,
    Manifest,
    Passage,
    Sentence,
    read_manifest,
    write_index,
)

TITLE_BUDGET = 32  # word pieces of the title that go into a passage's embedding


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI summary, the job status and the logs."""

    added: list[str]  # relative paths
    changed: list[str]
    removed: list[str]
    unchanged: int
    skipped: list[Skipped]
    embedded: int  # passages embedded by this build
    seconds: float
    full: bool
    manifest: Manifest

    @property
    def documents(self) -> int:
        return len(self.manifest.documents)

    @property
    def passages(self) -> int:
        """Passages in the index now."""
        return self.manifest.passages

    def summary(self) -> str:
        """One line for people: what changed, what the index holds, how long it took."""
        kind = "Rebuilt from scratch" if self.full else "Updated the index"
        return (
            f"{kind}: {len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped documents; "
            f"{self.passages} passages ({self.embedded} embedded) in {self.seconds:.1f} s."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "full": self.full,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "documents": self.documents,
            "passages": self.passages,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 2),
        }


Progress = Callable[[int, int], None]  # (passages embedded so far, passages to embed)


@dataclass(frozen=True)
class Embedded:
    """What reading the documents folder gave a build: files to reuse, files refused, and what to add."""

    unchanged: dict[str, str]  # path -> sha256 of files the previous build indexed as they are now
    skipped: list[Skipped]
    added: Batch  # new and changed documents, chunked and embedded, passages numbered from `first_id`
    backend: str  # what computed the vectors (the manifest records it, for information only)


# Reads, chunks and embeds what a build must (re)embed, given the documents folder, the previous
# build's (id, sha256) by path and the first free passage id. The default runs in this process;
# `distributed.RayEmbed` runs the same steps on a Ray cluster.
Embed = Callable[[Path, Mapping[str, tuple[str, str]], int], Embedded]


def embedding_input(title: str, passage: str) -> str:
    """The text embedded for a passage: its article's title, then the passage.

    A passage alone may not name its subject ("He was previously responsible..."); the title does.
    """
    return f"{title}\n{passage}"


def chunk_document(
    doc: Document, embedder: Embedder, settings: ChunkSettings, first_id: int
) -> list[Passage]:
    """The passages of one document, numbered from `first_id`, each fitting with its title."""
    title = _title_for_embedding(doc.title, embedder)
    budget = embedder.max_tokens - embedder.count_tokens(title + "\n")
    limits = dataclasses.replace(
        settings,
        max_tokens=min(settings.max_tokens, budget),
        target_tokens=min(settings.target_tokens, budget),
    )
    spans = [
        (start + a, start + b)
        for start, end in story_regions(doc, settings)
        for a, b in chunk(doc.text[start:end], embedder.count_tokens, limits)
    ]
    return [
        Passage(first_id + i, doc.id, start, end, doc.text[start:end]) for i, (start, end) in enumerate(spans)
    ]


def story_regions(doc: Document, settings: ChunkSettings) -> list[tuple[int, int]]:
    """The stretches of `doc.text` that passages may cover: pages, less captions, credits and datelines.

    A passage never runs over a page break, so a citation's page is the page of everything it quotes;
    and never over wire furniture (`documents.boilerplate`), so that is never quoted as an answer.
    """
    bounds = [*doc.pages, len(doc.text)] if doc.pages else [0, len(doc.text)]
    regions = list(itertools.pairwise(bounds))
    if settings.boilerplate:
        for cut_start, cut_end in boilerplate(doc.text):
            regions = [
                piece
                for start, end in regions
                for piece in ((start, min(end, cut_start)), (max(start, cut_end), end))
                if piece[0] < piece[1]
            ]
    return regions


def _title_for_embedding(title: str, embedder: Embedder) -> str:
    """The title, shortened between words if needed so that it never crowds out the passage."""
    words = title.split()
    while words and embedder.count_tokens(" ".join(words)) > TITLE_BUDGET:
        words.pop()
    return " ".join(words)


def build_index(
    documents_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings = ChunkSettings(),
    show_progress: bool = False,
    *,
    full: bool = False,
    progress: Progress | None = None,
    lock: BuildLock | None = None,
    embed: Embed | None = None,
) -> BuildReport:
    """Bring the index in `index_dir` in step with `documents_dir`, embedding only what changed.

    Documents are compared by content hash with the last build: new and changed ones are read,
    chunked and embedded; removed ones are dropped; the rest is reused as it is. `full`, or a
    change of model or chunking, rebuilds from scratch. One build runs at a time per index folder
    (`lock`, when the caller already holds it), and a crash at any moment leaves the previous index.
    `embed` replaces reading, chunking and embedding in this process (see `Embed`).
    """
    owned = lock is None
    lock = lock or BuildLock(index_dir)
    if owned:
        lock.acquire()

    def here(folder: Path, known: Mapping[str, tuple[str, str]], first_id: int) -> Embedded:
        return read_and_embed(folder, known, first_id, embedder, settings, show_progress, progress)

    try:
        return _build(documents_dir, index_dir, embedder, settings, full, embed or here)
    finally:
        if owned:
            lock.release()


def _build(
    documents_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings,
    full: bool,
    embed: Embed,
) -> BuildReport:
    started = time.perf_counter()
    base = read_manifest(index_dir)
    known: dict[str, tuple[str, str]] = {}
    first_id = 0
    if full or base is None or incompatibility(base, embedder.name, settings, embedder.dimensions):
        base = None
    else:
        try:
            previous = Index(index_dir)
            known, first_id = previous.fingerprints(), previous.next_passage_id()
            base = previous.manifest
        except IndexMissing:
            base = None

    found = embed(documents_dir, known, first_id)
    unchanged, skipped, added = found.unchanged, found.skipped, found.added
    docs = added.documents
    drop = {doc_id for path, (doc_id, _) in known.items() if path not in unchanged}
    manifest = Manifest(
        model=embedder.name,
        dimensions=embedder.dimensions,
        chunking=dataclasses.asdict(settings),
        documents={**unchanged, **{d.path: d.sha256 for d in docs}},
        skipped={s.path: {"sha256": s.sha256, "reason": s.reason} for s in skipped},
        passages=0,  # counted by write_index
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        build_seconds=0.0,
        versions=_versions(),
        embedding=compatibility(embedder.name),
        backend=found.backend,
    )
    manifest.build_seconds = round(time.perf_counter() - started, 3)
    manifest = write_index(index_dir, manifest, added, base=base, drop=drop)
    return BuildReport(
        added=sorted(d.path for d in docs if d.path not in known),
        changed=sorted(d.path for d in docs if d.path in known),
        removed=sorted(set(known) - set(manifest.documents)),
        unchanged=len(unchanged),
        skipped=skipped,
        embedded=len(added.passages),
        seconds=time.perf_counter() - started,
        full=base is None,
        manifest=manifest,
    )


def read_and_embed(
    documents_dir: Path,
    known: Mapping[str, tuple[str, str]],
    first_id: int,
    embedder: Embedder,
    settings: ChunkSettings,
    show_progress: bool = False,
    progress: Progress | None = None,
) -> Embedded:
    """Read the documents folder here, then chunk and embed its new and changed documents here."""
    docs: list[Document] = []
    skipped: list[Skipped] = []
    unchanged: dict[str, str] = {}
    for item in load_documents(documents_dir, known):
        if isinstance(item, Unchanged):
            unchanged[item.path] = item.sha256
        elif isinstance(item, Document):
            docs.append(item)
        else:
            skipped.append(item)
    added = embed_documents(docs, embedder, settings, first_id, show_progress, progress)
    return Embedded(unchanged, skipped, added, getattr(embedder, "backend", "unknown"))


def embed_documents(
    docs: list[Document],
    embedder: Embedder,
    settings: ChunkSettings,
    first_id: int,
    show_progress: bool = False,
    progress: Progress | None = None,
) -> Batch:
    """Chunk and embed `docs`, numbering passages from `first_id`, with passage and sentence vectors."""
    passages: list[Passage] = []
    inputs: list[str] = []
    shifts: list[int] = []  # where the passage starts inside its embedding input
    spans: list[list[tuple[int, int]]] = []  # sentence spans, relative to the passage
    for doc in docs:
        doc_passages = chunk_document(doc, embedder, settings, first_id=first_id + len(passages))
        title = _title_for_embedding(doc.title, embedder)
        for p in doc_passages:
            inputs.append(embedding_input(title, p.text))
            shifts.append(len(embedding_input(title, "")))
            spans.append(sentences(p.text))
        passages.extend(doc_passages)

    bar = None
    if show_progress and passages:
        from tqdm import tqdm

        bar = tqdm(total=len(passages), desc="Embedding", unit="passage", file=sys.stderr)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if bar is not None:
            bar.update(count)
        if progress:
            progress(done, len(passages))

    if progress:
        progress(0, len(passages))
    vectors, sentence_vectors = embedder.encode_spans(
        inputs,
        [[(a + shift, b + shift) for a, b in sp] for sp, shift in zip(spans, shifts, strict=True)],
        progress=step,
    )
    if bar is not None:
        bar.close()
    passage_sentences = [
        [Sentence(a, b, v) for (a, b), v in zip(sp, vs, strict=True)]
        for sp, vs in zip(spans, sentence_vectors, strict=True)
    ]
    return Batch(docs, passages, vectors, passage_sentences)


def incompatibility(
    manifest: Manifest, model: str, settings: ChunkSettings, dimensions: int | None = None
) -> str | None:
    """Why an index cannot serve or be extended under this configuration, or None when it can."""
    if manifest.model != model:
        return f"built with model {manifest.model!r}, configured {model!r}"
    if manifest.embedding not in ("", compatibility(model)):  # "": recorded before, always fp32
        return f"built with {manifest.embedding} vectors, configured {compatibility(model)}"
    if dimensions is not None and manifest.dimensions != dimensions:
        return f"built with {manifest.dimensions}-dimensional vectors, the model gives {dimensions}"
    if manifest.chunking != dataclasses.asdict(settings):
        return "built with other chunking settings"
    return None


def staleness(
    documents_dir: Path, index_dir: Path, model: str, settings: ChunkSettings = ChunkSettings()
) -> str | None:
    """Why the index in `index_dir` cannot serve this configuration, or None when it is current."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return "no index has been built"
    reason = incompatibility(manifest, model, settings)
    if reason:
        return reason
    on_disk = fingerprint(documents_dir)
    known = dict(manifest.documents)
    known.update({path: s["sha256"] for path, s in manifest.skipped.items()})
    if on_disk != known:
        added = sorted(set(on_disk) - set(known))
        removed = sorted(set(known) - set(on_disk))
        changed = sorted(p for p in set(on_disk) & set(known) if on_disk[p] != known[p])
        parts = [
            f"{len(items)} {label}"
            for items, label in ((added, "added"), (changed, "changed"), (removed, "removed"))
            if items
        ]
        return "documents changed since the last build: " + ", ".join(parts)
    return None


def _versions() -> dict[str, str]:
    """Library versions recorded in the manifest, for reproducing a build."""
    result = {}
    packages = ("iss-qa", "onnxruntime", "tokenizers", "sentence-transformers", "torch", "transformers")
    for package in (*packages, "faiss-cpu"):
        try:
            result[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            result[package] = "unknown"
    return result
