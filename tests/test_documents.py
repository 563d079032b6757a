"""Ingestion: metadata from front matter, fallbacks without it, and unreadable files skipped."""

from __future__ import annotations

from pathlib import Path

from service.documents import Document, Skipped, document_ids, load_documents, split_front_matter

from .conftest import DOCUMENTS


def load(folder: Path) -> tuple[dict[str, Document], dict[str, Skipped]]:
    docs, skipped = {}, {}
    for item in load_documents(folder):
        if isinstance(item, Document):
            docs[item.path] = item
        else:
            skipped[item.path] = item
    return docs, skipped


def test_seed_articles_carry_citation_metadata():
    docs, skipped = load(DOCUMENTS)
    assert not skipped
    assert len(docs) == 2
    for doc in docs.values():
        assert doc.title and doc.published and doc.source
        assert len(doc.published) == 10 and doc.published[4] == "-"  # ISO date
        assert not doc.text.startswith("---")
        assert "title:" not in doc.text and "published:" not in doc.text


def test_front_matter_is_metadata_not_text(tmp_path):
    (tmp_path / "a.md").write_text(
        "---\ntitle: 'A: title'\npublished: 2024-01-02\n# a comment\nsource: Reuters\n"
        "url: https://example.org/a\n---\nBody text here.\n",
        encoding="utf-8",
    )
    doc = load(tmp_path)[0]["a.md"]
    assert (doc.title, doc.published, doc.source, doc.url) == (
        "A: title",
        "2024-01-02",
        "Reuters",
        "https://example.org/a",
    )
    assert doc.text == "Body text here.\n"


def test_without_front_matter_title_comes_from_first_line_or_file_name(tmp_path):
    (tmp_path / "short.txt").write_text("Station news\n\nThe body.", encoding="utf-8")
    (tmp_path / "long-first-line.txt").write_text("word " * 60, encoding="utf-8")
    docs, _ = load(tmp_path)
    assert docs["short.txt"].title == "Station news"
    assert docs["short.txt"].text == "Station news\n\nThe body."
    assert docs["short.txt"].published is None
    assert docs["long-first-line.txt"].title == "long-first-line"


def test_unreadable_files_are_skipped_with_a_reason_and_the_rest_index(tmp_path):
    (tmp_path / "good.txt").write_text("A readable article.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n ", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "only-meta.md").write_text("---\ntitle: x\n---\n\n", encoding="utf-8")
    (tmp_path / "bad-meta.md").write_text("---\ntitle: [unclosed\n---\nText.", encoding="utf-8")
    docs, skipped = load(tmp_path)
    assert list(docs) == ["good.txt"]
    reasons = {path: s.reason for path, s in skipped.items()}
    assert "UTF-8" in reasons["latin1.txt"]
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "no text" in reasons["only-meta.md"]
    assert "front matter" in reasons["bad-meta.md"]
    assert all("\n" not in r for r in reasons.values())


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path):
    (tmp_path / ".draft.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.TXT").write_text("Nested article.", encoding="utf-8")
    docs, skipped = load(tmp_path)
    assert list(docs) == ["sub/a.TXT"] and not skipped


def test_ids_are_readable_and_unique():
    ids = document_ids(["2022/NASA news.txt", "a.txt", "a.md", "b.md"])
    assert ids["2022/NASA news.txt"] == "2022-nasa-news"
    assert ids["b.md"] == "b"
    assert ids["a.txt"] != ids["a.md"]


def test_windows_line_endings_and_bom_are_normalised(tmp_path):
    (tmp_path / "w.txt").write_bytes("\ufeff---\r\ntitle: W\r\n---\r\nLine one.\r\n\r\nLine two.".encode())
    doc = load(tmp_path)[0]["w.txt"]
    assert doc.title == "W"
    assert doc.text == "Line one.\n\nLine two."


def test_no_front_matter_when_the_block_is_not_at_the_top():
    meta, body = split_front_matter("Text first\n---\ntitle: x\n---\n")
    assert meta == {} and body.startswith("Text first")
