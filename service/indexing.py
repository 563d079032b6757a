"""Building the index from the documents folder, and telling whether an existing one is stale."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .chunking import ChunkSettings, chunk, sentences
from .documents import Document, Skipped, fingerprint, load_documents
from .embedding import Embedder
from .store import Manifest, Passage, Sentence, read_manifest, write_index

TITLE_BUDGET = 32  # word pieces of the title that go into a passage's embedding


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI summary and the logs."""

    documents: int
    passages: int
    skipped: list[Skipped]
    seconds: float
    manifest: Manifest


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
    spans = chunk(doc.text, embedder.count_tokens, limits)
    return [
        Passage(first_id + i, doc.id, start, end, doc.text[start:end]) for i, (start, end) in enumerate(spans)
    ]


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
) -> BuildReport:
    """Read, chunk and embed every document, then write the index folder atomically."""
    started = time.perf_counter()
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for item in load_documents(documents_dir):
        (docs if isinstance(item, Document) else skipped).append(item)

    passages: list[Passage] = []
    inputs: list[str] = []
    shifts: list[int] = []  # where the passage starts inside its embedding input
    spans: list[list[tuple[int, int]]] = []  # sentence spans, relative to the passage
    for doc in docs:
        doc_passages = chunk_document(doc, embedder, settings, first_id=len(passages))
        title = _title_for_embedding(doc.title, embedder)
        for p in doc_passages:
            inputs.append(embedding_input(title, p.text))
            shifts.append(len(embedding_input(title, "")))
            spans.append(sentences(p.text))
        passages.extend(doc_passages)

    vectors, sentence_vectors = embedder.encode_spans(
        inputs,
        [[(a + shift, b + shift) for a, b in sp] for sp, shift in zip(spans, shifts, strict=True)],
        show_progress=show_progress,
    )
    passage_sentences = [
        [Sentence(a, b, v) for (a, b), v in zip(sp, vs, strict=True)]
        for sp, vs in zip(spans, sentence_vectors, strict=True)
    ]
    seconds = time.perf_counter() - started
    manifest = Manifest(
        model=embedder.name,
        dimensions=embedder.dimensions,
        chunking=dataclasses.asdict(settings),
        documents={d.path: d.sha256 for d in docs},
        skipped={s.path: {"sha256": s.sha256, "reason": s.reason} for s in skipped},
        passages=len(passages),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 3),
        versions=_versions(),
    )
    manifest = write_index(index_dir, manifest, docs, passages, vectors, passage_sentences)
    return BuildReport(len(docs), len(passages), skipped, time.perf_counter() - started, manifest)


def staleness(
    documents_dir: Path, index_dir: Path, model: str, settings: ChunkSettings = ChunkSettings()
) -> str | None:
    """Why the index in `index_dir` cannot serve this configuration, or None when it is current."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return "no index has been built"
    if manifest.model != model:
        return f"built with model {manifest.model!r}, configured {model!r}"
    if manifest.chunking != dataclasses.asdict(settings):
        return "built with other chunking settings"
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
    for package in ("iss-qa", "sentence-transformers", "faiss-cpu", "torch", "transformers"):
        try:
            result[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            result[package] = "unknown"
    return result
