"""The index folder: a manifest beside a native FAISS file, an SQLite passage store and a keyword index.

The one module that imports faiss (and tantivy). A build writes new, uniquely named data files and
folders first and then replaces `manifest.json` atomically; the manifest names the data it belongs
to. A crash at any moment therefore leaves the previous manifest pointing at the previous, intact data.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np
import tantivy
from rapidfuzz.distance import OSA

from .documents import Document
from .errors import RebuildInProgress
from .text import WORDS, keyword_tokens, plain, stems

MANIFEST = "manifest.json"
LOCK = ".lock"
# 4: keyword search moved from an FTS5 table in the passage store to a Tantivy folder (`keywords-*`);
# an index of an earlier format is not read, so the next build is a full one.
FORMAT_VERSION = 4
DATA_PREFIXES = ("vectors-", "passages-", "keywords-", ".tmp-")

# Keyword search (BM25 over each passage with its article's title) is a Tantivy index: its top-k
# search skips whole blocks of postings that cannot reach the current top k (block-max WAND), where
# SQLite FTS5 scored every passage holding any word: 1.2 ms against 96 ms at p50 per question at a
# million passages, every content word of the question (docs/benchmarks.md, section 10). Passages
# are stored as `text.keyword_tokens` splits and stems them (FTS5's `porter unicode61`), joined by
# spaces for Tantivy's whitespace tokenizer; one field holds title and passage, as FTS5's BM25 scored
# the whole row; with positions, for the few query words of several tokens ("Russia’s").
KEYWORD_WRITER_HEAP = 512_000_000  # bytes for the whole writer: fewer, larger segments to search

# Vector index by size: exact inner product up to EXACT_LIMIT vectors (a flat scan costs about 0.2 ms per
# thousand vectors per question on one core), an inverted-file index (IVF) above it, whose search
# scans only `nprobe` of its `nlist` clusters. Chosen by bench/scale.py (docs/benchmarks.md, section 10):
# recall@10 against exact search >= 0.95 at one million passages.
EXACT_LIMIT = 20_000
IVF_NPROBE = int(os.environ.get("ISSQA_NPROBE", "32"))
IVF_TRAIN_PER_LIST = 40  # training vectors per cluster (FAISS warns below 39)
IVF_TRAIN_ITERATIONS = 10  # k-means rounds (FAISS defaults to 25; recall barely moves, time does)

_SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, published TEXT, source TEXT,
    url TEXT, sha256 TEXT NOT NULL, text TEXT NOT NULL,
    pages TEXT NOT NULL DEFAULT '[]'  -- JSON list of the offsets where each page starts (PDF)
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, document_id TEXT NOT NULL REFERENCES documents(id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX passages_document ON passages(document_id);
CREATE TABLE sentences (
    passage_id INTEGER NOT NULL REFERENCES passages(id), start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX sentences_passage ON sentences(passage_id);
"""


@dataclass(frozen=True)
class Passage:
    """A span of one document's text: the unit that is embedded, retrieved and cited."""

    id: int
    document_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage (offsets into the passage text) with its unit vector."""

    start: int
    end: int
    vector: np.ndarray


@dataclass
class Manifest:
    """What an index was built from; compared with the configuration to decide staleness."""

    model: str
    dimensions: int
    chunking: dict[str, Any]
    documents: dict[str, str]  # relative path -> sha256 of the indexed files
    skipped: dict[str, dict[str, str]]  # relative path -> {"sha256", "reason"}
    passages: int
    built_at: str
    build_seconds: float
    versions: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    # Which vectors the index holds (`embedding.compatibility`): the model and its precision, never
    # the backend, since both backends give the same vectors. Empty in indexes built before it was
    # recorded, all of them by torch in fp32.
    embedding: str = ""
    backend: str = ""  # what computed the vectors, for the record only: never compared

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class IndexMissing(RuntimeError):
    """There is no loadable index in the folder."""


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None when there is none or it cannot be read."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None
    return manifest if manifest.format == FORMAT_VERSION else None


@dataclass
class Batch:
    """What a build adds to an index: documents with their passages, vectors and sentences."""

    documents: list[Document] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    vectors: np.ndarray | None = None
    sentences: list[list[Sentence]] = field(default_factory=list)


def write_index(
    folder: Path,
    manifest: Manifest,
    added: Batch,
    *,
    base: Manifest | None = None,
    drop: Collection[str] = (),
) -> Manifest:
    """Write a complete index into `folder` and switch to it atomically; returns the manifest.

    With `base`, the new index starts as a copy of that build less the documents in `drop`, so only
    new and changed documents need embedding. Nothing the live index uses is touched: the new data
    files get new names, and the manifest that names them replaces the old one in one rename.
    """
    folder.mkdir(parents=True, exist_ok=True)
    build = uuid.uuid4().hex[:12]
    files = {
        "vectors": f"vectors-{build}.faiss",
        "passages": f"passages-{build}.sqlite3",
        "keywords": f"keywords-{build}",
    }
    tmp_db = folder / (files["passages"] + ".tmp")
    tmp_db.unlink(missing_ok=True)
    if base is not None:
        shutil.copyfile(folder / base.files["passages"], tmp_db)  # data files are never modified
    db = sqlite3.connect(tmp_db)
    try:
        with db:
            removed: list[int] = []
            if base is None:
                db.executescript(_SCHEMA)
            else:
                removed = _drop_documents(db, sorted(drop))
            _insert(db, added)
            kept = [row[0] for row in db.execute("SELECT id FROM passages ORDER BY id")]
    finally:
        db.close()
    _fsync(tmp_db)

    tmp_keywords = folder / (files["keywords"] + ".tmp")
    base_keywords = folder / base.files["keywords"] if base is not None else None
    write_keywords(tmp_keywords, added, base=base_keywords, removed=removed)

    index = _vectors_for(folder, base, kept, removed, added, manifest.dimensions)
    tmp_vectors = folder / (files["vectors"] + ".tmp")
    faiss.write_index(index, str(tmp_vectors))
    _fsync(tmp_vectors)
    os.replace(tmp_vectors, folder / files["vectors"])
    os.replace(tmp_db, folder / files["passages"])
    os.replace(tmp_keywords, folder / files["keywords"])

    manifest.files = files
    manifest.passages = len(kept)
    previous = read_manifest(folder)
    write_json(folder / MANIFEST, asdict(manifest))
    # The previous build stays on disk: a server that loaded it keeps answering from it until it
    # notices the new manifest. Anything older, or left by an interrupted build, goes.
    keep = set(files.values()) | (set(previous.files.values()) if previous else set())
    remove_unreferenced(folder, keep)
    return manifest


def _drop_documents(db: sqlite3.Connection, ids: list[str]) -> list[int]:
    """Delete documents with their passages and sentences; returns the passage ids."""
    removed: list[int] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        passages = f"SELECT id FROM passages WHERE document_id IN ({marks})"
        removed += [row[0] for row in db.execute(passages, chunk)]
        db.execute(f"DELETE FROM sentences WHERE passage_id IN ({passages})", chunk)
        db.execute(f"DELETE FROM passages WHERE document_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM documents WHERE id IN ({marks})", chunk)
    return removed


def _vectors_for(
    folder: Path, base: Manifest | None, kept: list[int], removed: list[int], added: Batch, dims: int
) -> faiss.Index:
    """The vector index of the new build: the previous one less `removed`, plus the added passages.

    The previous index is reused in place when it is still the right kind for the new size (exact, or
    an already trained IVF); otherwise a new one is made and filled with the kept vectors. A growing
    IVF keeps the clusters it was trained with until `issqa index --full` trains it afresh.
    """
    new_ids = np.array([p.id for p in added.passages], dtype=np.int64)
    old = faiss.read_index(str(folder / base.files["vectors"])) if base is not None else None
    exact = len(kept) <= EXACT_LIMIT
    if old is not None and isinstance(old, faiss.IndexIDMap2) == exact:
        index = old
        if removed:
            index.remove_ids(np.array(removed, dtype=np.int64))  # type: ignore[arg-type]  # SWIG takes arrays
    else:
        index = new_vector_index(len(kept), dims)
        old_ids = np.array(sorted(set(kept) - set(new_ids.tolist())), dtype=np.int64)
        if old is not None and len(old_ids):
            add_vectors(index, old.reconstruct_batch(old_ids), old_ids)
    if len(new_ids) and added.vectors is not None:
        add_vectors(index, added.vectors, new_ids)
    return index


def _insert(db: sqlite3.Connection, added: Batch) -> None:
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (d.id, d.path, d.title, d.published, d.source, d.url, d.sha256, d.text, json.dumps(d.pages))
            for d in added.documents
        ],
    )
    db.executemany(
        'INSERT INTO passages (id, document_id, start, "end", text) VALUES (?, ?, ?, ?, ?)',
        [(p.id, p.document_id, p.start, p.end, p.text) for p in added.passages],
    )
    db.executemany(
        'INSERT INTO sentences (passage_id, start, "end", vector) VALUES (?, ?, ?, ?)',
        [
            (p.id, s.start, s.end, s.vector.astype(np.float16).tobytes())
            for p, sents in zip(added.passages, added.sentences, strict=True)
            for s in sents
        ],
    )


def keyword_schema() -> tantivy.Schema:
    """The keyword index's fields: the passage id (to delete by, and to read from a hit) and its text.

    The text is the article's title and the passage in one field: BM25 then weighs a title word
    like a word of the passage, with the passage's length, as the FTS5 table did (its scores over
    title and body columns were the row's). A first version with two fields, Tantivy's own stemmer
    and its idf lost answers on the project's own questions (docs/benchmarks.md, section 10).
    """
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", indexed=True, fast=True)
    builder.add_text_field("text", tokenizer_name="whitespace", index_option="position")
    return builder.build()


def write_keywords(
    path: Path, added: Batch, *, base: Path | None = None, removed: Iterable[int] = ()
) -> None:
    """Write a keyword index into the new folder `path`: a copy of `base` less `removed`, plus `added`.

    The base folder is copied, never opened for writing, because a server may be searching it; the
    copy is committed, its merges awaited and every file and the folder synced, so that renaming it
    into place leaves a complete index on disk.
    """
    shutil.rmtree(path, ignore_errors=True)
    if base is not None:
        shutil.copytree(base, path)
        index = tantivy.Index.open(str(path))
    else:
        path.mkdir()
        index = tantivy.Index(keyword_schema(), path=str(path))
    writer = index.writer(heap_size=KEYWORD_WRITER_HEAP, num_threads=min(4, os.cpu_count() or 1))
    gone = sorted(removed)
    if gone:  # by query: `delete_documents_by_term` misses unsigned ids (tantivy-py 0.27)
        writer.delete_documents_by_query(tantivy.Query.term_set_query(index.schema, "id", gone))
    titles = {d.id: d.title for d in added.documents}
    for p in added.passages:
        doc = tantivy.Document()
        doc.add_unsigned("id", p.id)
        doc.add_text("text", " ".join(keyword_tokens(f"{titles[p.document_id]}\n\n{p.text}")))
        writer.add_document(doc)
    writer.commit()
    writer.garbage_collect_files()
    writer.wait_merging_threads()
    for file in path.iterdir():
        _fsync(file)
    fsync_dir(path)


def ivf_lists(count: int) -> int:
    """Clusters of an IVF index over `count` vectors: about 2·√count (2,000 at a million)."""
    return max(1, round(2 * math.sqrt(count)))


def new_vector_index(count: int, dims: int) -> faiss.Index:
    """An empty inner-product index suited to `count` vectors of `dims` dimensions.

    Exact (`IndexIDMap2(IndexFlatIP)`) up to EXACT_LIMIT vectors; above it an `IndexIVFFlat` with
    `ivf_lists(count)` clusters, which `add_vectors` trains. Both take passage ids as they are and
    `reconstruct(id)` returns a stored vector (the IVF keeps a hash table from id to its place), and
    both can be memory-mapped by `read_vector_index`.
    """
    if count <= EXACT_LIMIT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dims))
    quantizer = faiss.IndexFlatIP(dims)
    index = faiss.IndexIVFFlat(quantizer, dims, ivf_lists(count), faiss.METRIC_INNER_PRODUCT)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    index.cp.niter = IVF_TRAIN_ITERATIONS
    index.nprobe = IVF_NPROBE
    return index


def add_vectors(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
    """Add `vectors` with their `ids`, training the index first if it needs it (IVF: on a sample)."""
    if not len(ids):
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # bulk work: every core (searches use one, see Index)
    try:
        if not index.is_trained:
            ivf = faiss.extract_index_ivf(index)
            sample = min(len(vectors), IVF_TRAIN_PER_LIST * ivf.nlist)
            rows = np.random.default_rng(0).choice(len(vectors), sample, replace=False)
            index.train(vectors[np.sort(rows)])
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    finally:
        faiss.omp_set_num_threads(threads)


def read_vector_index(path: Path) -> faiss.Index:
    """Read a vector file memory-mapped and read-only, so that processes serving it share one copy.

    FAISS maps an IVF's inverted lists (`IO_FLAG_MMAP`) and a flat index's vectors
    (`IO_FLAG_MMAP_IFC`, FAISS >= 1.10) straight from the file; the operating system's page cache
    then holds them once for every worker, and only the pages a search touches are read. The two
    flags do not combine (with both, an IVF is read into memory), so the file's first four bytes,
    FAISS's type code, choose: "Iw…" is an IVF. Anything else FAISS cannot map is read as before.
    """
    with open(path, "rb") as handle:
        ivf_file = handle.read(2) == b"Iw"
    mmap = faiss.IO_FLAG_MMAP if ivf_file else getattr(faiss, "IO_FLAG_MMAP_IFC", 0)
    try:
        index = faiss.read_index(str(path), mmap | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(str(path))
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = IVF_NPROBE
    return index


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON atomically and durably: readers see the old or the new file."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp_name, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: the directory entry itself must reach the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_unreferenced(folder: Path, keep: set[str]) -> None:
    """Delete data files and folders not in `keep`: earlier builds' and leftovers of interrupted ones."""
    for path in folder.iterdir():
        if path.name == MANIFEST or path.name in keep or not path.name.startswith(DATA_PREFIXES):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class BuildLock:
    """One build at a time per index folder: an exclusive `flock` on `<index>/.lock`.

    The kernel drops the lock when its holder exits, however it exits, so a crashed or killed build
    never blocks the next one. The holder's pid is written in the file for the error message.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fd: int | None = None

    def acquire(self) -> BuildLock:
        """Take the lock or raise `RebuildInProgress` at once: a second build never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RebuildInProgress(
                f"A rebuild of the index is already in progress{who}; try again when it has finished."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BuildLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


K = TypeVar("K")
V = TypeVar("V")
CACHED_PASSAGES = 4096  # per loaded index: see Index._rows
CACHED_DOCUMENTS = 256  # per loaded index: see Index.documents
CACHED_ARTICLES = 16384  # per loaded index: see Index.articles (a few MB when full)
CACHED_CLAUSES = 65536  # per loaded index: see Index._clause
# Respelling a word no passage holds (Index.spelled_as): the passages a fuzzy search reads for the
# spellings they use, and the edits allowed (one, two from this many letters on).
SPELLING_PASSAGES = 20
TWO_EDITS_FROM = 8
CACHED_SPELLINGS = 65536  # per loaded index: see Index.spelled_as


@dataclass(frozen=True)
class Held:
    """One passage as the loaded index keeps it: its text, its sentences' spans and vectors, its stems.

    The sentences (as objects, their vectors views of `vectors`) and the stems of the text are made
    once, when the passage is read from the store: every question that retrieves the passage again
    needs them, and building them per question was most of stage two's Python work.
    """

    passage: Passage
    vectors: np.ndarray  # float32 (stored as float16), one row per sentence
    sentences: tuple[Sentence, ...]  # the same sentences, each with its row of `vectors`
    stems: frozenset[str]  # `text.stems` of the passage's text (its coverage of a question)

    @classmethod
    def of(cls, passage: Passage, spans: list[tuple[int, int]], vectors: np.ndarray) -> Held:
        """The passage with its sentences' (start, end) spans, in reading order, and their vectors."""
        pairs = zip(spans, vectors, strict=True)
        sentences = tuple(Sentence(start, end, vector) for (start, end), vector in pairs)
        return cls(passage, vectors, sentences, stems(passage.text))


@dataclass(frozen=True)
class Neighbour:
    """A passage id with its inner-product score."""

    passage_id: int
    score: float


def tantivy_idf(passages: int, holding: int) -> float:
    """Tantivy's BM25 idf of a term held by `holding` of `passages`: ln(1 + (N − n + 0.5)/(n + 0.5))."""
    return math.log1p((passages - holding + 0.5) / (holding + 0.5))


def fts5_idf(passages: int, holding: int) -> float:
    """SQLite FTS5's BM25 idf of a term (or phrase) held by `holding` of `passages`.

    ln((N − n + 0.5)/(n + 0.5)), floored at 1e-6: unlike Tantivy's, a word in more than half the
    passages adds next to nothing. On a small corpus that is most of its common words, and
    retrieval's weights and the answers they give were tuned with it (benchmarks section 10).
    A clause boosted by this over Tantivy's idf scores as FTS5 scored it.
    """
    return max(math.log((passages - holding + 0.5) / (holding + 0.5)), 1e-6)


def _open_keywords(path: Path) -> tuple[tantivy.Searcher, tantivy.Schema]:
    """A searcher over the keyword folder, opened once per loaded index and shared by every thread.

    The folder never changes once written, so its reader never reloads (and watches no file).
    """
    if not path.is_dir():
        raise IndexMissing(f"the keyword index is missing from {path.parent}")
    try:
        index = tantivy.Index.open(str(path))
        index.config_reader(reload_policy="Manual")
        return index.searcher(), index.schema
    except ValueError as exc:
        raise IndexMissing(f"cannot read the keyword index in {path.parent}: {exc}") from None


@lru_cache(maxsize=65536)
def _word_tokens(word: str) -> tuple[str, ...]:
    """`keyword_tokens` of one query word, cached: questions keep using the same words."""
    return tuple(keyword_tokens(word))


class Index:
    """A loaded index: the FAISS vectors, a read-only view of the passage store, the keyword searcher."""

    def __init__(self, folder: Path) -> None:
        manifest = read_manifest(folder)
        if manifest is None or not manifest.files:
            raise IndexMissing(f"no index in {folder}")
        self.folder = folder
        self.manifest = manifest
        try:
            self._faiss = read_vector_index(folder / manifest.files["vectors"])
            # Questions are searched one at a time: FAISS's OpenMP threads only add synchronisation
            # there (12 ms against 0.06 ms per search measured beside torch's threads; docs/benchmarks.md
            # section 10). Builds raise it again for their bulk work (add_vectors).
            faiss.omp_set_num_threads(1)
        except RuntimeError as exc:
            raise IndexMissing(f"cannot read the vectors in {folder}: {exc}") from None
        db_path = folder / manifest.files["passages"]
        if not db_path.exists():
            raise IndexMissing(f"the passage store is missing from {folder}")
        self._db_uri = f"file:{db_path}?mode=ro&immutable=1"
        self._keywords = _open_keywords(folder / manifest.files["keywords"])
        self._local = threading.local()
        # Recently read passages with their sentences (the index never changes once loaded): the same
        # candidates come back question after question, and reading them is most of what retrieval
        # costs besides the model. Oldest out first; about 40 MB when full.
        self._rows: dict[int, Held] = {}
        self._docs: dict[str, Document] = {}
        self._articles: dict[str, tuple[str, str]] = {}
        self._clauses: dict[tuple[str, ...], tuple[tantivy.Occur, tantivy.Query] | None] = {}
        self._spellings: dict[str, str | None] = {}
        self._rows_lock = threading.Lock()

    @property
    def size(self) -> int:
        return int(self._faiss.ntotal)

    def _db(self) -> sqlite3.Connection:
        """One read-only connection per thread: SQLite connections are not shared across threads."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._db_uri, uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def search(self, query: np.ndarray, k: int) -> list[Neighbour]:
        """The `k` passages whose vectors have the highest inner product with `query`."""
        return [Neighbour(pid, score) for pid, score in self.nearest(query, k).items()]

    def nearest(self, query: np.ndarray, k: int) -> dict[int, float]:
        """`search` as passage id -> score, best first: what retrieval reads, without an object per hit."""
        k = min(k, self.size)
        if k <= 0:
            return {}
        scores, ids = self._faiss.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        return {
            pid: score for pid, score in zip(ids[0].tolist(), scores[0].tolist(), strict=True) if pid >= 0
        }

    def keyword_search(self, words: Sequence[str], k: int) -> list[Neighbour]:
        """The `k` best passages by BM25 (higher is better) for any of `words`, in title or text.

        Each word is split and stemmed as the passages were (`text.keyword_tokens`) and becomes an
        optional (SHOULD) clause: a term query, or for a word of several tokens ("Russia’s") a
        phrase query, as FTS5 read a quoted word. A disjunction of term queries is what Tantivy
        answers with block-max WAND. Each clause is boosted to FTS5's idf (`fts5_idf`), the
        BM25 that retrieval's weights were tuned with. Tantivy releases the GIL while it searches,
        so request threads overlap.
        """
        return [Neighbour(pid, score) for pid, score in self.keyword_scores(words, k).items()]

    def keyword_scores(self, words: Sequence[str], k: int) -> dict[int, float]:
        """`keyword_search` as passage id -> BM25 score, best first, without an object per hit."""
        searcher = self._keywords[0]
        clauses = []
        for tokens in sorted({_word_tokens(word) for word in words} - {()}):
            clause = self._clause(tokens)
            if clause is not None:
                clauses.append(clause)
        if not clauses or k <= 0:
            return {}
        # count=False: counting every match would visit every posting, which is what WAND avoids.
        hits = searcher.search(tantivy.Query.boolean_query(clauses), k, count=False).hits
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        return {int(pid or 0): float(score) for (score, _), pid in zip(hits, ids, strict=True)}

    def _clause(self, tokens: tuple[str, ...]) -> tuple[tantivy.Occur, tantivy.Query] | None:
        """One word's boosted clause (None when no passage holds it), made once per loaded index and cached.

        The clause depends only on the word and the index, which never changes once loaded, and
        making it (document frequencies, for a phrase a counting search) cost more than the search.
        """
        try:
            return self._clauses[tokens]
        except KeyError:  # not asked for since the index was loaded (or the cache was cleared)
            pass
        searcher, schema = self._keywords
        total = searcher.num_docs
        holding = [searcher.doc_freq("text", token) for token in tokens]
        clause: tuple[tantivy.Occur, tantivy.Query] | None = None
        if all(holding):
            if len(tokens) == 1:
                query = tantivy.Query.term_query(schema, "text", tokens[0], index_option="freq")
                passages = holding[0]
            else:  # FTS5's idf counts the passages holding the phrase; Tantivy's sums its words'
                query = tantivy.Query.phrase_query(schema, "text", list(tokens))
                found = searcher.search(query, 1, count=True)
                passages = int(getattr(found, "count", 0) or 0)  # `count` is missing from the stubs
            if passages:
                boost = fts5_idf(total, passages) / sum(tantivy_idf(total, n) for n in holding)
                clause = (tantivy.Occur.Should, tantivy.Query.boost_query(query, boost))
        if len(self._clauses) >= CACHED_CLAUSES:
            self._clauses.clear()
        self._clauses[tokens] = clause
        return clause

    def _remember(self, cache: dict[K, V], fresh: Mapping[K, V], limit: int) -> None:
        """Add `fresh` to one of the index's caches, dropping the oldest entries beyond `limit`."""
        with self._rows_lock:
            cache.update(fresh)
            for old in list(cache)[: max(0, len(cache) - limit)]:
                del cache[old]

    def holds(self, word: str) -> bool:
        """Whether any passage (or its article's title) holds `word` in some form, as keyword search reads it.

        Read from the word's keyword clause (`_clause`, cached), which the keyword search then uses.
        """
        tokens = _word_tokens(word)
        return bool(tokens) and self._clause(tokens) is not None

    def spelled_as(self, word: str) -> str | None:
        """How the passages spell `word` when none holds it as written, else None: "Roskosmos" for
        "Roscosmos", "Krikalev" for "Krikalyov".

        The candidates are the words, beginning with `word`'s letter, of the passages a fuzzy keyword
        search finds within one edit; when there are none, within two (from TWO_EDITS_FROM letters
        on). Among them the spelling most of those passages use wins, written as they most often
        write it. Cached per word: the index never changes once loaded.
        """
        key = word.lower()
        try:
            return self._spellings[key]
        except KeyError:  # not asked for since the index was loaded (or the cache was cleared)
            pass
        spelled = None
        tokens = _word_tokens(key)
        if len(tokens) == 1 and not self.holds(key):
            for limit in (1, 2) if len(key) >= TWO_EDITS_FROM else (1,):
                spelled = self._nearest_spelling(key, tokens[0], limit)
                if spelled is not None:
                    break
        if len(self._spellings) >= CACHED_SPELLINGS:
            self._spellings.clear()
        self._spellings[key] = spelled
        return spelled

    def _nearest_spelling(self, key: str, token: str, limit: int) -> str | None:
        """The word within `limit` edits of `key` that most of the passages a fuzzy search finds hold."""
        searcher, schema = self._keywords
        query = tantivy.Query.fuzzy_term_query(schema, "text", token, distance=limit)
        # A fuzzy match scores alike in every passage: the lowest ids make the choice repeatable.
        hits = searcher.search(
            query, SPELLING_PASSAGES, count=False, order_by_field="id", order=tantivy.Order.Asc
        ).hits
        ids = [int(pid or 0) for pid in searcher.fast_field_values("id", [a for _, a in hits])]
        edits: dict[str, int] = {}
        holding: Counter[str] = Counter()  # candidate -> passages holding it
        written: dict[str, Counter[str]] = {}  # candidate -> its forms as written
        for text in self._texts(ids):
            here = set()
            for form in WORDS.findall(text):
                candidate = plain(form)
                if candidate[:1] != key[:1] or candidate == key or not candidate.isalpha():
                    continue
                if candidate not in edits:  # a swap of neighbours counts one edit, as in Tantivy's search
                    edits[candidate] = OSA.distance(key, candidate, score_cutoff=limit)  # limit + 1 beyond
                if edits[candidate] <= limit:
                    here.add(candidate)
                    written.setdefault(candidate, Counter())[form.strip("'’")] += 1
            holding.update(here)
        if not holding:
            return None
        best = min(holding, key=lambda c: (edits[c], -holding[c], c))
        return written[best].most_common(1)[0][0]

    def _texts(self, ids: list[int]) -> list[str]:
        """Each passage's text with its article's title, as the keyword index holds them."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db().execute(
            f"SELECT d.title || ' ' || p.text FROM passages p JOIN documents d ON d.id = p.document_id "
            f"WHERE p.id IN ({marks})",
            ids,
        )
        return [row[0] for row in rows]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given passages, in order."""
        if not ids:
            return np.zeros((0, self.manifest.dimensions), dtype=np.float32)
        return np.asarray(self._faiss.reconstruct_batch(np.asarray(ids, dtype=np.int64)))

    def passages(self, ids: list[int]) -> dict[int, Passage]:
        """Passages by id."""
        return {pid: rows.passage for pid, rows in self.held(ids).items()}

    def sentences(self, passage_ids: list[int]) -> dict[int, list[Sentence]]:
        """The sentences of the given passages, in reading order, with their vectors."""
        held = self.held(passage_ids)
        return {pid: list(held[pid].sentences) if pid in held else [] for pid in passage_ids}

    def held(self, ids: Iterable[int]) -> dict[int, Held]:
        """The passages among `ids` with their sentences and stems, from the cache or else the store."""
        found: dict[int, Held] = {}
        missing: list[int] = []
        for pid in ids:
            rows = self._rows.get(pid)
            if rows is not None:
                found[pid] = rows
            elif pid not in found:
                missing.append(pid)
        if not missing:
            return found
        missing = list(dict.fromkeys(missing))
        db = self._db()
        marks = ",".join("?" * len(missing))
        passages = {
            row[0]: Passage(*row)
            for row in db.execute(
                f'SELECT id, document_id, start, "end", text FROM passages WHERE id IN ({marks})', missing
            )
        }
        sentences: dict[int, list[tuple[int, int, int, bytes]]] = {pid: [] for pid in passages}
        for row in db.execute(
            f'SELECT passage_id, start, "end", vector FROM sentences WHERE passage_id IN ({marks}) '
            "ORDER BY passage_id, start",
            missing,
        ):
            sentences[row[0]].append(row)
        fresh = {}
        for pid, passage in passages.items():
            held = sentences[pid]
            vectors = np.frombuffer(b"".join(r[3] for r in held), dtype=np.float16).astype(np.float32)
            shape = (len(held), self.manifest.dimensions)
            fresh[pid] = Held.of(passage, [(r[1], r[2]) for r in held], vectors.reshape(shape))
        self._remember(self._rows, fresh, CACHED_PASSAGES)
        found.update(fresh)
        return found

    def documents(self, ids: Iterable[str] | None = None) -> dict[str, Document]:
        """Documents by id: the given ones, or all of them."""
        if ids is None:
            return self._documents_where("", [])
        wanted = set(ids)
        # .get, not `in` then [ ]: another request thread may drop an entry in between.
        found = {doc_id: doc for doc_id in wanted if (doc := self._docs.get(doc_id)) is not None}
        missing = sorted(wanted - set(found))
        if missing:
            # The hits' documents come back question after question, like their passages.
            fresh = self._documents_where(f" WHERE id IN ({','.join('?' * len(missing))})", missing)
            self._remember(self._docs, fresh, CACHED_DOCUMENTS)
            found |= fresh
        return found

    def articles(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Each document's article, as its folder and title: what telling one article from another needs.

        Documents of one folder with one title are one article kept as several files (as the
        benchmarks keep one file per paragraph); a shared file-name title ("README") in two folders
        is not. Cached: a follow-up's candidates need a hundred of them, question after question, and
        reading them each time cost more than the rest of the search.
        """
        wanted = set(ids)
        found = {doc_id: key for doc_id in wanted if (key := self._articles.get(doc_id)) is not None}
        missing = sorted(wanted - set(found))
        if missing:
            rows = self._db().execute(
                f"SELECT id, path, title FROM documents WHERE id IN ({','.join('?' * len(missing))})", missing
            )
            fresh = {doc_id: (path.rpartition("/")[0], title) for doc_id, path, title in rows}
            self._remember(self._articles, fresh, CACHED_ARTICLES)
            found |= fresh
        return found

    def _documents_where(self, where: str, params: list[str]) -> dict[str, Document]:
        sql = "SELECT id, path, title, published, source, url, text, sha256, pages FROM documents" + where
        return {
            row[0]: Document(
                id=row[0],
                path=row[1],
                title=row[2],
                published=row[3],
                source=row[4],
                url=row[5],
                text=row[6],
                sha256=row[7],
                pages=tuple(json.loads(row[8])),
            )
            for row in self._db().execute(sql, params)
        }

    def published(self, passage_ids: list[int]) -> dict[int, str | None]:
        """The publication date of each passage's document."""
        if not passage_ids:
            return {}
        marks = ",".join("?" * len(passage_ids))
        rows = self._db().execute(
            f"SELECT p.id, d.published FROM passages p JOIN documents d ON d.id = p.document_id "
            f"WHERE p.id IN ({marks})",
            passage_ids,
        )
        return dict(rows.fetchall())

    def fingerprints(self) -> dict[str, tuple[str, str]]:
        """Each indexed document's path with its id and content hash: what an incremental build compares."""
        rows = self._db().execute("SELECT path, id, sha256 FROM documents")
        return {path: (doc_id, sha) for path, doc_id, sha in rows}

    def next_passage_id(self) -> int:
        """The first id a build may give a new passage, above every id still in the index."""
        (top,) = self._db().execute("SELECT MAX(id) FROM passages").fetchone()
        return 0 if top is None else int(top) + 1

    def passage_counts(self) -> dict[str, int]:
        """How many passages each document has."""
        rows = self._db().execute("SELECT document_id, COUNT(*) FROM passages GROUP BY document_id")
        return dict(rows.fetchall())

    def passages_of(self, document_id: str) -> list[Passage]:
        """All passages of one document, in reading order."""
        rows = self._db().execute(
            'SELECT id, document_id, start, "end", text FROM passages WHERE document_id = ? ORDER BY start',
            (document_id,),
        )
        return [Passage(*row) for row in rows]
