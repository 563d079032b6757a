"""Uploads: safe names, content refused for the indexer's reasons, atomic no-overwrite saves, removal."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service import uploads
from service.documents import Skipped, load_documents, parse
from service.errors import BadRequest, Conflict, IssqaError, NotFound, PayloadTooLarge, UnsupportedMediaType
from service.models import error_body
from service.uploads import add, check_content, remove, safe_name, save, with_metadata

from .files import ARTICLE_HTML, make_pdf, page_text


def files_in(folder: Path) -> list[str]:
    """Every entry under `folder`, hidden ones included, as sorted relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.txt", "report.txt"),
        ("Notes.MD", "Notes.MD"),
        ("../../etc/x.txt", "x.txt"),
        ("/abs.txt", "abs.txt"),
        ("..\\x.txt", "x.txt"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("a/b.txt", "b.txt"),
        ("  spaced name.html  ", "spaced name.html"),
        ("\uff0e\uff0e\uff0fwide.txt", "wide.txt"),  # full-width "../" is normalised, then dropped
        ("cafe\u0301.txt", "café.txt"),  # one way of writing é, whatever the client sent
    ],
)
def test_safe_name_keeps_only_a_plain_file_name(filename, expected):
    assert safe_name(filename) == expected


@pytest.mark.parametrize(
    ("filename", "error", "code"),
    [
        ("../../etc/passwd", UnsupportedMediaType, "unsupported_media_type"),
        ("program.exe", UnsupportedMediaType, "unsupported_media_type"),
        ("archive.txt.zip", UnsupportedMediaType, "unsupported_media_type"),
        ("trailing.txt.", UnsupportedMediaType, "unsupported_media_type"),
        (".hidden.txt", BadRequest, "invalid_filename"),
        ("dir/.hidden.txt", BadRequest, "invalid_filename"),
        (".txt", BadRequest, "invalid_filename"),
        ("", BadRequest, "invalid_filename"),
        ("..", BadRequest, "invalid_filename"),
        ("folder/", BadRequest, "invalid_filename"),
        ("a\x00.txt", BadRequest, "invalid_filename"),
        ("evil.html\x00.txt", BadRequest, "invalid_filename"),
        ("line\nbreak.txt", BadRequest, "invalid_filename"),
        ("report\u202etxt.exe", BadRequest, "invalid_filename"),  # right-to-left override
        ("zero\u200bwidth.txt", BadRequest, "invalid_filename"),
    ],
)
def test_safe_name_refuses_what_cannot_be_made_safe(filename, error, code):
    with pytest.raises(error) as caught:
        safe_name(filename)
    assert caught.value.code == code


def test_safe_name_shortens_long_names_keeping_the_suffix():
    assert safe_name("a" * 300 + ".md") == "a" * 197 + ".md"
    name = safe_name("é" * 150 + ".txt")  # two bytes each: cut on a character boundary
    assert name.endswith(".txt") and len(name.encode()) <= uploads.MAX_NAME_BYTES
    assert set(name.removesuffix(".txt")) == {"é"}


def test_check_content_accepts_every_good_format():
    check_content("a.txt", b"A short article.")
    check_content("a.md", b"---\ntitle: T\n---\nBody.")
    check_content("a.html", ARTICLE_HTML.encode())
    check_content("a.pdf", make_pdf([page_text(1)]))


@pytest.mark.parametrize(
    ("name", "data", "error", "code"),
    [
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", UnsupportedMediaType, "unsupported_media_type"),
        ("doc.txt", b"PK\x03\x04\x14\x00", UnsupportedMediaType, "unsupported_media_type"),
        ("prog.md", b"\x7fELF\x02\x01\x01", UnsupportedMediaType, "unsupported_media_type"),
        ("page.html", b"%PDF-1.4 really a pdf", UnsupportedMediaType, "unsupported_media_type"),
        ("fake.pdf", b"<html>a page</html>", UnsupportedMediaType, "unsupported_media_type"),
        ("big.txt", b"x" * (5 * 1024 * 1024 + 1), PayloadTooLarge, "payload_too_large"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), BadRequest, "unreadable_document"),
        ("empty.txt", b" \n", BadRequest, "unreadable_document"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", BadRequest, "unreadable_document"),
        ("menu.html", b"<html><nav><a href='/'>Home</a></nav></html>", BadRequest, "unreadable_document"),
    ],
)
def test_check_content_refuses_what_the_indexer_would_skip(tmp_path, name, data, error, code):
    with pytest.raises(error) as caught:
        check_content(name, data)
    assert caught.value.code == code
    (tmp_path / name).write_bytes(data)
    [item] = load_documents(tmp_path)
    assert (
        isinstance(item, Skipped) and item.reason in caught.value.message
    )  # the same reason as `issqa index` gives


def test_check_content_refuses_an_unsupported_suffix_the_folder_would_ignore():
    with pytest.raises(UnsupportedMediaType):
        check_content("a.exe", b"text")


def test_save_writes_atomically_and_never_overwrites_unless_asked(tmp_path):
    folder = tmp_path / "documents"
    path = save(folder, "a.txt", b"first")
    assert path == folder.resolve() / "a.txt" and path.read_bytes() == b"first"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(Conflict) as caught:
        save(folder, "a.txt", b"second")
    assert caught.value.status == 409 and path.read_bytes() == b"first"
    assert save(folder, "a.txt", b"third", overwrite=True) == path
    assert path.read_bytes() == b"third"
    assert files_in(folder) == ["a.txt"]  # no temporary file left behind, success or conflict


def test_save_strips_traversal_and_stays_inside_the_folder(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    assert save(folder, "../../escape.txt", b"x") == folder.resolve() / "escape.txt"
    assert save(folder, "/etc/abs.txt", b"x") == folder.resolve() / "abs.txt"
    assert files_in(tmp_path) == ["documents", "documents/abs.txt", "documents/escape.txt"]
    with pytest.raises(BadRequest):
        save(folder, ".hidden.txt", b"x")


def test_save_replaces_a_link_never_what_it_points_to(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    (folder / "link.txt").symlink_to(outside)
    with pytest.raises(Conflict):
        save(folder, "link.txt", b"new")
    save(folder, "link.txt", b"new", overwrite=True)
    assert outside.read_bytes() == b"keep me"
    assert not (folder / "link.txt").is_symlink() and (folder / "link.txt").read_bytes() == b"new"


def test_save_cleans_up_when_writing_fails(tmp_path, monkeypatch):
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        save(tmp_path, "a.txt", b"data")
    assert files_in(tmp_path) == []


def test_concurrent_saves_of_one_name_let_exactly_one_win(tmp_path):
    def attempt(n: int) -> str:
        try:
            save(tmp_path, "race.txt", f"writer {n}".encode())
            return "saved"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert sorted(outcomes) == ["conflict"] * 15 + ["saved"]
    assert (tmp_path / "race.txt").read_text().startswith("writer ")
    assert files_in(tmp_path) == ["race.txt"]


def test_remove_deletes_one_document_inside_the_folder(tmp_path):
    folder = tmp_path / "documents"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    (folder / "b.pdf").write_bytes(b"%PDF-")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (folder / "link.txt").symlink_to(outside)
    remove(folder, "sub/a.txt")
    remove(folder, "link.txt")
    assert outside.read_text() == "keep me"
    assert files_in(folder) == ["b.pdf", "sub"]
    with pytest.raises(NotFound):
        remove(folder, "sub/a.txt")
    with pytest.raises(NotFound):
        remove(folder, "sub/nothing/x.txt")


@pytest.mark.parametrize(
    "relative_path",
    [
        "../outside.txt",
        "/etc/passwd.txt",
        "sub/../../outside.txt",
        ".hidden.txt",
        "a/.git/x.txt",
        "b.exe",
        "",
        "sub\\..\\..\\outside.txt",
        "a\x00.txt",
    ],
)
def test_remove_refuses_paths_that_leave_the_folder_or_are_not_documents(tmp_path, relative_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("keep me")
    with pytest.raises(BadRequest):
        remove(folder, relative_path)
    assert (tmp_path / "outside.txt").read_text() == "keep me"


def test_remove_refuses_a_linked_folder_that_leads_elsewhere(tmp_path):
    folder, elsewhere = tmp_path / "documents", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (elsewhere / "x.txt").write_text("keep me")
    (folder / "linked").symlink_to(elsewhere)
    with pytest.raises(BadRequest):
        remove(folder, "linked/x.txt")
    assert (elsewhere / "x.txt").exists()


def test_metadata_becomes_front_matter_merged_with_the_files_own():
    plain = with_metadata(
        "a.txt", b"Body line.\n", {"title": "T: colon", "published": "2022-07-15T10:00:00Z"}
    )
    doc = parse(plain, "a.txt", "a")
    assert (doc.title, doc.published, doc.text) == ("T: colon", "2022-07-15", "Body line.\n")

    own = b"---\ntitle: Old\nsource: Wire\nauthor: Kim\n---\nBody.\n"
    merged = with_metadata("a.md", own, {"title": "New", "url": "https://example.org/a", "source": None})
    assert merged.decode().startswith(
        "---\ntitle: New\nsource: Wire\nauthor: Kim\nurl: https://example.org/a\n---\n"
    )
    doc = parse(merged, "a.md", "a")
    assert (doc.title, doc.source, doc.url, doc.text) == ("New", "Wire", "https://example.org/a", "Body.\n")
    assert with_metadata("a.txt", b"Body.", {"title": " ", "url": None}) == b"Body."


@pytest.mark.parametrize(
    ("name", "data", "meta", "code"),
    [
        ("a.html", ARTICLE_HTML.encode(), {"title": "T"}, "unsupported_metadata"),
        ("a.pdf", b"%PDF-", {"published": "2024-01-01"}, "unsupported_metadata"),
        ("a.txt", b"Body.", {"published": "last Tuesday"}, "invalid_published"),
        ("a.txt", b"Body.", {"author": "Kim"}, "unknown_field"),
        ("a.txt", "caf\xe9".encode("latin-1"), {"title": "T"}, "unreadable_document"),
        ("a.md", b"---\ntitle: [unclosed\n---\nBody.", {"title": "T"}, "unreadable_document"),
    ],
)
def test_metadata_that_cannot_be_stored_is_refused(name, data, meta, code):
    with pytest.raises(BadRequest) as caught:
        with_metadata(name, data, meta)
    assert caught.value.code == code


def test_html_and_pdf_without_metadata_pass_through_unchanged():
    assert with_metadata("a.html", b"<html></html>", {}) == b"<html></html>"


def test_add_checks_then_saves_a_document_the_indexer_reads_as_sent(tmp_path):
    folder = tmp_path / "documents"
    pdf = make_pdf([page_text(1), page_text(2)], title="Report")
    assert add(folder, "../Report.pdf", pdf).name == "Report.pdf"
    add(folder, "note.txt", b"Station news\n\nThe body.", {"published": "2024-02-03", "source": "Wire"})
    with pytest.raises(UnsupportedMediaType):
        add(folder, "photo.txt", b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(Conflict):
        add(folder, "note.txt", b"Another body.")
    docs = {d.path: d for d in load_documents(folder)}
    assert set(docs) == {"Report.pdf", "note.txt"}
    assert len(docs["Report.pdf"].pages) == 2 and docs["Report.pdf"].title == "Report"
    note = docs["note.txt"]
    assert (note.title, note.published, note.source, note.text) == (
        "Station news",
        "2024-02-03",
        "Wire",
        "Station news\n\nThe body.",
    )


def test_new_errors_keep_the_family_shape():
    for error, status, code in (
        (Conflict, 409, "conflict"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
    ):
        exc = error("why")
        assert isinstance(exc, IssqaError) and (exc.status, exc.code) == (status, code)
        assert error_body(exc.code, exc.message) == {"error": {"code": code, "message": "why"}}
