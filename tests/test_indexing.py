"""The index folder: save and load, manifest contents, staleness, incremental and atomic rebuilds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from service import text
from service.chunking import ChunkSettings
from service.embedding import compatibility
from service.errors import RebuildInProgress
from service.indexing import build_index, staleness
from service.store import MANIFEST, BuildLock, Index, read_manifest

from .conftest import ROOT, SHARED, FakeEmbedder


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_build_writes_manifest_faiss_and_store(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    report = build_index(corpus, index_dir, fake_embedder)
    manifest = json.loads((index_dir / MANIFEST).read_text())
    assert manifest["model"] == fake_embedder.name
    assert manifest["dimensions"] == fake_embedder.dimensions
    assert manifest["chunking"] == dataclasses.asdict(ChunkSettings())
    assert set(manifest["documents"]) == {p.name for p in corpus.glob("*.txt")}
    assert all(len(h) == 64 for h in manifest["documents"].values())
    assert {"sentence-transformers", "faiss-cpu", "torch"} <= set(manifest["versions"])
    assert manifest["built_at"] and manifest["passages"] == report.passages > 0
    assert sorted(p.name for p in index_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [MANIFEST, manifest["files"]["vectors"], manifest["files"]["passages"], manifest["files"]["keywords"]]
    )
    assert (index_dir / manifest["files"]["keywords"]).is_dir(), "the keyword index is a folder of its own"


def test_loaded_index_returns_passages_that_slice_their_documents(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    docs = index.documents()
    assert len(docs) == 2
    total = 0
    for doc in docs.values():
        passages = index.passages_of(doc.id)
        total += len(passages)
        for p in passages:
            assert doc.text[p.start : p.end] == p.text
        sentences = index.sentences([p.id for p in passages])
        for p in passages:
            assert sentences[p.id], "every passage has its sentences"
            for s in sentences[p.id]:
                assert p.text[s.start : s.end].strip() == p.text[s.start : s.end]
                assert abs(np.linalg.norm(s.vector) - 1) < 1e-2
    assert total == index.size


def test_staleness_follows_documents_model_and_chunking(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    model = fake_embedder.name
    assert staleness(corpus, index_dir, model) == "no index has been built"
    build_index(corpus, index_dir, fake_embedder)
    assert staleness(corpus, index_dir, model) is None

    assert "model" in staleness(corpus, index_dir, "another-model")
    assert "chunking" in staleness(corpus, index_dir, model, ChunkSettings(target_tokens=64))

    first = sorted(corpus.glob("*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\nOne more line.", encoding="utf-8")
    assert "1 changed" in staleness(corpus, index_dir, model)
    (corpus / "new.md").write_text("A new article.", encoding="utf-8")
    assert "1 added" in staleness(corpus, index_dir, model)
    first.unlink()
    assert "1 removed" in staleness(corpus, index_dir, model)


def test_skipped_files_do_not_make_the_index_stale(corpus, tmp_path, fake_embedder):
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00\x00binary")
    report = build_index(corpus, tmp_path / "index", fake_embedder)
    assert [s.path for s in report.skipped] == ["broken.txt"]
    assert report.documents == 2
    assert staleness(corpus, tmp_path / "index", fake_embedder.name) is None
    assert read_manifest(tmp_path / "index").skipped["broken.txt"]["reason"]


def test_indexing_never_modifies_the_documents_folder(corpus, tmp_path, fake_embedder):
    (corpus / "broken.txt").write_bytes(b"\x00\x01")
    before = tree_digest(corpus)
    build_index(corpus, tmp_path / "index", fake_embedder)
    build_index(corpus, tmp_path / "index", fake_embedder)
    assert tree_digest(corpus) == before


def data_files(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name != MANIFEST and not p.name.startswith("."))


def test_rebuild_keeps_the_previous_build_and_removes_older_ones_and_leftovers(
    corpus, tmp_path, fake_embedder
):
    index_dir = tmp_path / "index"
    first = build_index(corpus, index_dir, fake_embedder).manifest.files
    live = Index(index_dir)  # a server that loaded the first build
    (index_dir / "vectors-crashed.faiss.tmp").write_bytes(b"partial")  # what a killed build leaves
    (index_dir / "keywords-crashed.tmp").mkdir()
    (index_dir / "keywords-crashed.tmp" / "meta.json").write_text("{")
    second = build_index(corpus, index_dir, fake_embedder, full=True).manifest.files
    assert first != second
    assert data_files(index_dir) == sorted([*first.values(), *second.values()])
    # The server still on the first build can open new connections (another thread) and answer.
    found = []
    thread = threading.Thread(
        target=lambda: found.append(
            (live.passages_of(next(iter(live.documents()))), live.keyword_search(("rogozin",), 3))
        )
    )
    thread.start()
    thread.join()
    assert found and found[0][0] and found[0][1]
    third = build_index(corpus, index_dir, fake_embedder, full=True).manifest.files
    assert data_files(index_dir) == sorted([*second.values(), *third.values()])
    assert not (index_dir / first["keywords"]).exists(), "an older build's keyword folder goes"


def passage_keys(index: Index) -> set[tuple[str, int, int, str]]:
    return {
        (doc.path, p.start, p.end, p.text)
        for doc in index.documents().values()
        for p in index.passages_of(doc.id)
    }


def test_incremental_builds_embed_only_what_changed(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    first = build_index(corpus, index_dir, fake_embedder)
    assert first.full and len(first.added) == 2 and first.embedded == first.passages == fake_embedder.encoded

    extra = corpus / "zebra.md"
    extra.write_text("# Zebras on the station\n\nA zebra named Quagga floated past the Zvezda module.\n")
    fake_embedder.encoded = 0
    added = build_index(corpus, index_dir, fake_embedder)
    assert (added.added, added.changed, added.removed, added.unchanged) == (["zebra.md"], [], [], 2)
    assert not added.full and added.embedded == fake_embedder.encoded == 1
    assert added.passages == first.passages + 1
    assert Index(index_dir).keyword_search(("quagga",), 5)

    seed = sorted(corpus.glob("*.txt"))[0]
    seed.write_text(seed.read_text(encoding="utf-8") + "\n\nA closing line about okapis.\n", encoding="utf-8")
    fake_embedder.encoded = 0
    changed = build_index(corpus, index_dir, fake_embedder)
    assert (changed.added, changed.changed, changed.removed, changed.unchanged) == ([], [seed.name], [], 2)
    assert 0 < changed.embedded == fake_embedder.encoded < first.passages
    index = Index(index_dir)
    assert index.keyword_search(("okapis",), 5)
    # The changed document's old passages left the keyword index: every hit is a passage of the store.
    rogozin = {n.passage_id for n in index.keyword_search(("rogozin",), 1000)}
    assert rogozin and set(index.passages(sorted(rogozin))) == rogozin

    extra.unlink()
    fake_embedder.encoded = 0
    removed = build_index(corpus, index_dir, fake_embedder)
    assert (removed.added, removed.changed, removed.removed, removed.unchanged) == ([], [], ["zebra.md"], 2)
    assert removed.embedded == fake_embedder.encoded == 0
    index = Index(index_dir)
    assert not index.keyword_search(("quagga",), 5), "a removed document leaves the keyword index too"
    assert index.size == removed.passages == changed.passages - 1
    assert "zebra" not in index.documents()
    assert staleness(corpus, index_dir, fake_embedder.name) is None

    # The same documents built from scratch give the same passages, vectors and keyword hits.
    full = build_index(corpus, tmp_path / "full", FakeEmbedder())
    scratch = Index(tmp_path / "full")
    assert passage_keys(index) == passage_keys(scratch) and full.passages == removed.passages
    query = fake_embedder.encode(["Rogozin NASA Soyuz crew"])[0]

    def by_key(idx, hits):
        return [(idx.passages([h.passage_id])[h.passage_id].text, round(h.score, 5)) for h in hits]

    assert by_key(index, index.search(query, 5)) == by_key(scratch, scratch.search(query, 5))

    def keyword_texts(idx):
        hits = idx.keyword_search(("rogozin", "soyuz", "crew", "okapis"), 1000)
        return {idx.passages([h.passage_id])[h.passage_id].text for h in hits}

    assert keyword_texts(index) == keyword_texts(scratch)


def test_the_manifest_records_the_vectors_not_the_backend(corpus, tmp_path, fake_embedder):
    """Switching backends keeps the index (same vectors); other vectors, or no record at all, are judged apart."""
    index_dir = tmp_path / "index"
    fake_embedder.backend = "onnx"
    build_index(corpus, index_dir, fake_embedder)
    manifest = json.loads((index_dir / MANIFEST).read_text())
    assert manifest["embedding"] == compatibility(fake_embedder.name) == "all-MiniLM-L6-v2 fp32"
    assert manifest["backend"] == "onnx" and "onnxruntime" in manifest["versions"]
    fake_embedder.backend = "torch"
    fake_embedder.encoded = 0
    assert staleness(corpus, index_dir, fake_embedder.name) is None
    assert build_index(corpus, index_dir, fake_embedder).embedded == 0  # the other backend reuses it all

    def rewrite(**fields):
        data = json.loads((index_dir / MANIFEST).read_text())
        (index_dir / MANIFEST).write_text(json.dumps({**data, **fields}))

    rewrite(embedding="all-MiniLM-L6-v2 int8")
    assert staleness(corpus, index_dir, fake_embedder.name) == (
        "built with all-MiniLM-L6-v2 int8 vectors, configured all-MiniLM-L6-v2 fp32"
    )
    assert build_index(corpus, index_dir, fake_embedder).full
    rewrite(embedding="", backend="")  # an index from before the record: torch's fp32 vectors
    assert staleness(corpus, index_dir, fake_embedder.name) is None


def test_an_index_built_by_onnx_serves_the_torch_fallback_alike(news_index):
    """The shared index is built by the default (onnx); torch answers from it, unchanged, the same way."""
    from service import create_app, get_engine
    from service.embedding import SentenceTransformerEmbedder

    assert read_manifest(news_index["INDEX"]).backend == "onnx"
    onnx = get_engine(create_app({**news_index, "TESTING": True}))
    fallback = get_engine(
        create_app(
            {
                **news_index,
                "TESTING": True,
                "BACKEND": "torch",
                "EMBEDDER": SentenceTransformerEmbedder(cache_size=0),
            }
        )
    )
    assert fallback.staleness() is None
    for question in ("Who replaced Rogozin?", "When was the extra Soyuz flight agreed?"):
        a, b = onnx.ask(question), fallback.ask(question)
        assert a.answer == b.answer
        assert [(c.path, c.start) for c in a.citations] == [(c.path, c.start) for c in b.citations]


def test_full_or_a_new_model_or_chunking_rebuilds_everything(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    first = build_index(corpus, index_dir, fake_embedder)
    fake_embedder.encoded = 0
    assert build_index(corpus, index_dir, fake_embedder, full=True).embedded == first.passages
    smaller = build_index(corpus, index_dir, fake_embedder, ChunkSettings(target_tokens=64))
    assert smaller.full and smaller.embedded == smaller.passages > first.passages
    other = FakeEmbedder()
    other.name = "another-model"
    assert build_index(corpus, index_dir, other, ChunkSettings(target_tokens=64)).full


def test_an_index_of_the_format_before_the_keyword_folder_is_rebuilt_in_full(corpus, tmp_path, fake_embedder):
    """Format 3 kept keywords in an FTS5 table the loader no longer reads: the next build starts afresh."""
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, fake_embedder)
    data = json.loads((index_dir / MANIFEST).read_text())
    data["format"] = 3
    del data["files"]["keywords"]
    (index_dir / MANIFEST).write_text(json.dumps(data))
    assert staleness(corpus, index_dir, fake_embedder.name) is not None
    fake_embedder.encoded = 0
    report = build_index(corpus, index_dir, fake_embedder)
    assert report.full and fake_embedder.encoded == report.passages
    assert Index(index_dir).keyword_search(("rogozin",), 3)


def test_a_renamed_id_is_reindexed_under_its_new_id(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    (corpus / "note.txt").write_text("A note about the Zarya module.\n", encoding="utf-8")
    build_index(corpus, index_dir, fake_embedder)
    assert "note" in Index(index_dir).documents()
    (corpus / "note.md").write_text("Another note, about the Unity node.\n", encoding="utf-8")
    report = build_index(corpus, index_dir, fake_embedder)
    assert report.added == ["note.md"] and report.changed == ["note.txt"]
    assert {"note-txt", "note-md"} <= set(Index(index_dir).documents())
    assert "note" not in Index(index_dir).documents()


def test_one_build_at_a_time(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    with BuildLock(index_dir), pytest.raises(RebuildInProgress, match=f"process {os.getpid()}"):
        build_index(corpus, index_dir, fake_embedder)
    assert build_index(corpus, index_dir, fake_embedder).passages > 0  # released: the next one runs


def test_a_manifest_that_cannot_be_read_means_no_index(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    assert read_manifest(tmp_path) is None


def test_an_empty_folder_builds_an_empty_index(tmp_path, fake_embedder):
    (tmp_path / "docs").mkdir()
    report = build_index(tmp_path / "docs", tmp_path / "index", fake_embedder)
    assert report.passages == 0
    assert Index(tmp_path / "index").search(np.ones(16, dtype=np.float32), 5) == []


BUILD_SCRIPT = """
import sys, time
from pathlib import Path
from service.indexing import build_index
from tests.conftest import FakeEmbedder
build_index(Path(sys.argv[1]), Path(sys.argv[2]), FakeEmbedder(), full=True)
"""


def squad_corpus(folder: Path, count: int) -> Path:
    """`count` real passages from the SQuAD benchmark, one document each."""
    folder.mkdir()
    with (SHARED / "benchmarks" / "squad-v1.1-dev" / "passages.jsonl").open(encoding="utf-8") as lines:
        for i, line in zip(range(count), lines, strict=False):
            passage = json.loads(line)
            (folder / f"p{i:04d}.txt").write_text(
                f"{passage['title']}\n\n{passage['text']}\n", encoding="utf-8"
            )
    return folder


def assert_previous_index_serves(index_dir: Path, manifest: dict, corpus: Path) -> None:
    assert json.loads((index_dir / MANIFEST).read_text()) == manifest, "the manifest was not touched"
    index = Index(index_dir)
    assert index.size == manifest["passages"]
    assert index.search(FakeEmbedder().encode(["oil crisis embargo"])[0], 3)
    assert index.keyword_search(("embargo",), 3)
    assert len(index.documents()) == len(manifest["documents"])


def test_killing_a_build_at_any_moment_leaves_the_previous_index(tmp_path):
    """SIGKILL a real build process at moments spread over its whole run: reading, embedding, writing."""
    corpus = squad_corpus(tmp_path / "documents", 600)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, FakeEmbedder())
    manifest = json.loads((index_dir / MANIFEST).read_text())
    before = tree_digest(corpus)

    command = [sys.executable, "-c", BUILD_SCRIPT, str(corpus), str(index_dir)]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)  # how long a whole build takes, start-up included
    duration = time.monotonic() - started
    build_index(corpus, index_dir, FakeEmbedder())
    manifest = json.loads((index_dir / MANIFEST).read_text())

    interrupted = 0
    for fraction in (0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.97):
        process = subprocess.Popen(command, cwd=ROOT)
        time.sleep(duration * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if json.loads((index_dir / MANIFEST).read_text()) != manifest:  # it finished just in time
            manifest = json.loads((index_dir / MANIFEST).read_text())
        else:
            interrupted += 1
        assert_previous_index_serves(index_dir, manifest, corpus)
    assert interrupted >= 4, "most kills land before the build finishes"
    assert tree_digest(corpus) == before, "the documents folder is never touched"

    report = build_index(corpus, index_dir, FakeEmbedder(), full=True)  # the lock died with its holder
    assert report.passages == manifest["passages"]
    assert not [p.name for p in index_dir.iterdir() if p.name.endswith(".tmp")], "leftovers are cleared"


def test_a_build_interrupted_while_writing_keywords_leaves_the_live_index(corpus, tmp_path, monkeypatch):
    """A build that dies inside the keyword index's write: the live one answers, the leftover goes next time."""
    from service import store

    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, FakeEmbedder())
    manifest = json.loads((index_dir / MANIFEST).read_text())
    write = store.write_keywords

    def dies_half_way(path, added, **kwargs):
        write(path, store.Batch(added.documents[:1], added.passages[:1], None, []), **kwargs)
        raise KeyboardInterrupt  # as a kill would: after some files are written, before the rename

    monkeypatch.setattr(store, "write_keywords", dies_half_way)
    extra = corpus / "zebra.md"
    extra.write_text("# Zebras on the station\n\nA zebra named Quagga floated past the Zvezda module.\n")
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, index_dir, FakeEmbedder())
    leftovers = [p.name for p in index_dir.iterdir() if p.name.endswith(".tmp")]
    assert any(name.startswith("keywords-") for name in leftovers)
    assert json.loads((index_dir / MANIFEST).read_text()) == manifest
    live = Index(index_dir)
    assert live.keyword_search(("rogozin",), 3) and not live.keyword_search(("quagga",), 3)

    monkeypatch.setattr(store, "write_keywords", write)
    build_index(corpus, index_dir, FakeEmbedder())
    assert Index(index_dir).keyword_search(("quagga",), 3)
    assert not [p.name for p in index_dir.iterdir() if p.name.endswith(".tmp")], "leftovers are cleared"


def test_killing_the_real_indexer_mid_embedding(tmp_path, corpus, embedder):
    """`issqa index --full` with the real model, killed while its progress bar runs."""
    shutil.copy(SHARED / "corpora" / "wikipedia-space" / "Artemis_program.txt", corpus)
    index_dir = tmp_path / "index"
    env = {**os.environ, "ISSQA_DOCUMENTS": str(corpus), "ISSQA_INDEX": str(index_dir)}
    first = subprocess.run(
        [sys.executable, "-m", "service.cli", "index"], cwd=ROOT, env=env, capture_output=True
    )
    assert first.returncode == 0, first.stderr
    manifest = json.loads((index_dir / MANIFEST).read_text())

    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "index", "--full"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    seen = b""
    while b"passage/s" not in seen or seen.count(b"\r") < 3:  # the bar has moved: embedding is under way
        chunk = process.stderr.read1(256)
        assert chunk, f"the build ended before it could be killed: {seen[-500:]!r}"
        seen += chunk
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert json.loads((index_dir / MANIFEST).read_text()) == manifest
    assert Index(index_dir).size == manifest["passages"]

    index = Index(index_dir)
    assert index.keyword_search(("artemis",), 3) and len(index.documents()) == 3
    rebuilt = build_index(corpus, index_dir, embedder, full=True)  # the killed build's lock is gone
    assert rebuilt.full and rebuilt.passages == manifest["passages"]


def test_captions_credits_and_datelines_never_become_passages(tmp_path, fake_embedder):
    docs = tmp_path / "documents"
    docs.mkdir()
    seed = "2022-07-15-nasa-resumes-joint-iss-flights-with-russia.txt"
    shutil.copy(ROOT / "documents" / seed, docs / seed)
    (docs / "wire.txt").write_text(
        "Soyuz seat swap agreed\n\n"
        "MOSCOW, Aug 24 (Reuters) - Russia and the United States agreed an extra Soyuz flight for an "
        "American astronaut, the space agencies said on Thursday, in a rare sign of cooperation.\n\n"
        "A Soyuz rocket stands on the launch pad in Baikonur, Kazakhstan, October 10, 2018. "
        "REUTERS/Shamil Zhumatov/File Photo\n\n"
        "The flight is planned for next year, and a Russian cosmonaut will fly on a US spacecraft in return.\n\n"
        "(Reporting by Joey Roulette; Editing by Leslie Adler)\n",
        encoding="utf-8",
    )
    build_index(docs, tmp_path / "index", fake_embedder)
    index = Index(tmp_path / "index")
    passages = [p for doc in index.documents() for p in index.passages_of(doc)]
    text = "\n".join(p.text for p in passages)
    for furniture in (
        "(FILES)",
        "RESTRICTED TO EDITORIAL USE",
        "(AFP, dpa)",
        "REUTERS/",
        "Reporting by",
        "(Reuters) -",
    ):
        assert furniture not in text, furniture
    # The story around them is all there, with offsets that still slice the document.
    assert "Russia and the United States agreed an extra Soyuz flight" in text
    assert "The US space agency Nasa wants to resume cooperation" in text
    documents = index.documents()
    assert all(documents[p.document_id].text[p.start : p.end] == p.text for p in passages)


def test_keyword_clauses_made_once_score_as_made_afresh(corpus, tmp_path, fake_embedder):
    """The loaded index keeps each word's boosted clause; a question with them scores as a fresh index does."""
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, fake_embedder)
    warm = Index(index_dir)
    questions = [
        ("rogozin", "soyuz", "crew"),
        ("russia’s", "quagga", "nasa"),  # a phrase of two tokens, and a word no passage holds
        ("soyuz", "station", "russia’s"),
    ]
    for words in questions + questions:
        assert warm.keyword_scores(words, 20) == Index(index_dir).keyword_scores(words, 20)
        assert warm.keyword_search(words, 20) == Index(index_dir).keyword_search(words, 20)
    assert ("quagga",) in warm._clauses and warm._clauses[("quagga",)] is None


def test_passages_and_sentences_read_alike_from_the_cache_and_the_store(
    corpus, tmp_path, fake_embedder, monkeypatch
):
    """The loaded index keeps recent passages in memory; what it returns must be what the store holds."""
    from service import store

    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, fake_embedder)
    ids = list(range(Index(index_dir).next_passage_id()))
    assert len(ids) > 8

    def fresh(pids):
        return Index(index_dir).held(pids)  # nothing cached yet

    monkeypatch.setattr(store, "CACHED_PASSAGES", 5)
    index = Index(index_dir)
    for pids in (ids[:4], ids[2:9], ids[::-1], [ids[3], ids[3], 10_000, ids[0]], []):
        for _ in range(2):  # cold, then warm (or partly evicted)
            held, expected = index.held(pids), fresh(pids)
            assert set(held) == set(expected) == set(pids) - {10_000}
            assert index.passages(pids) == {pid: h.passage for pid, h in expected.items()}
            for pid, h in held.items():
                assert h.passage == expected[pid].passage
                assert h.vectors.dtype == np.float32 and np.array_equal(h.vectors, expected[pid].vectors)
                # What retrieval reads: the same sentences as objects, and the stems of the text.
                assert h.stems == text.stems(h.passage.text)
                assert [(s.start, s.end) for s in h.sentences] == [
                    (s.start, s.end) for s in expected[pid].sentences
                ]
                assert all(np.array_equal(s.vector, v) for s, v in zip(h.sentences, h.vectors, strict=True))
            assert len(index._rows) <= 5
    # The hits' documents are kept too, and read alike.
    monkeypatch.setattr(store, "CACHED_DOCUMENTS", 1)
    everything = Index(index_dir).documents()
    names = sorted(everything)
    assert len(names) > 1
    for wanted in (names[:1], names, names[::-1], [names[0], "no-such-document"], []):
        for _ in range(2):
            assert index.documents(wanted) == {d: everything[d] for d in wanted if d in everything}
            assert len(index._docs) <= 1
