"""The index folder: save and load, manifest contents, staleness, atomic replacement."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from service.chunking import ChunkSettings
from service.indexing import build_index, staleness
from service.store import MANIFEST, Index, read_manifest


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
    assert sorted(p.name for p in index_dir.iterdir()) == sorted(
        [MANIFEST, manifest["files"]["vectors"], manifest["files"]["passages"]]
    )


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


def test_rebuild_replaces_files_and_removes_leftovers(corpus, tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    first = build_index(corpus, index_dir, fake_embedder).manifest.files
    (index_dir / "vectors-crashed.faiss.tmp").write_bytes(b"partial")  # what a killed build leaves
    second = build_index(corpus, index_dir, fake_embedder).manifest.files
    assert first != second
    assert sorted(p.name for p in index_dir.iterdir()) == sorted([MANIFEST, *second.values()])


def test_a_manifest_that_cannot_be_read_means_no_index(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    assert read_manifest(tmp_path) is None


def test_an_empty_folder_builds_an_empty_index(tmp_path, fake_embedder):
    (tmp_path / "docs").mkdir()
    report = build_index(tmp_path / "docs", tmp_path / "index", fake_embedder)
    assert report.passages == 0
    assert Index(tmp_path / "index").search(np.ones(16, dtype=np.float32), 5) == []
