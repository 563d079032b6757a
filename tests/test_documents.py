"""Ingestion: text, Markdown, HTML and PDF; metadata, page offsets, and unreadable files skipped."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from service import documents
from service.documents import (
    Document,
    Skipped,
    candidate_files,
    document_ids,
    load_documents,
    page_of,
    split_front_matter,
)

from .conftest import DOCUMENTS, SHARED
from .files import ARTICLE_HTML, HTML_NOISE, encrypt, make_pdf, page_text


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


def test_front_matter_dates_become_iso_days(tmp_path):
    (tmp_path / "a.md").write_text("---\npublished: 2022-07-15T10:30:00Z\n---\nBody.", encoding="utf-8")
    (tmp_path / "b.md").write_text("---\npublished: '2023-01-02 08:00'\n---\nBody.", encoding="utf-8")
    (tmp_path / "c.md").write_text("---\npublished: July 2021\n---\nBody.", encoding="utf-8")
    docs, _ = load(tmp_path)
    assert docs["a.md"].published == "2022-07-15"
    assert docs["b.md"].published == "2023-01-02"
    assert docs["c.md"].published == "July 2021"  # not a recognisable date: kept as written
    assert docs["a.md"].pages == ()


def test_html_gives_the_article_text_and_metadata_without_the_page_noise(tmp_path):
    (tmp_path / "crew.html").write_text(ARTICLE_HTML, encoding="utf-8")
    doc = load(tmp_path)[0]["crew.html"]
    assert (doc.title, doc.published, doc.source, doc.url) == (
        "Station crew returns safely",
        "2023-09-27",
        "Space Daily",
        "https://example.org/crew-returns",
    )
    assert "Three crew members returned from the International Space Station" in doc.text
    assert "spending 371 days in space." in doc.text
    assert not [noise for noise in HTML_NOISE if noise in doc.text]
    # one paragraph per block, as chunking expects; the source's line breaks inside one are spaces
    assert doc.text.split("\n\n")[1:5] == [
        "Three crew members returned from the International Space Station on Wednesday after a year in "
        "orbit, landing in Kazakhstan.",
        "The Soyuz capsule touched down at 11:17 GMT, the Russian space agency Roscosmos said in a "
        "statement on its website.",
        "Landing: Kazakhstan steppe",
        "Mission length: 371 days",
    ]
    assert doc.pages == ()


@pytest.mark.parametrize(
    ("markup", "published"),
    [
        ('<meta name="date" content="2021-03-04">', "2021-03-04"),
        (
            '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2019-07-08T09:00:00Z"}'
            "</script>",
            "2019-07-08",
        ),
        ("", None),  # no date in the markup: the footer's year and the text's dates are not guessed
    ],
)
def test_html_dates_come_from_markup_only(tmp_path, markup, published):
    body = "<p>The crew said on 12 January 2018 that the experiments on plants went well in orbit.</p>" * 2
    page = f"<html><head><title>Plants in orbit</title>{markup}</head><body><article>{body}</article>"
    (tmp_path / "p.htm").write_text(page + "<footer>(c) 2020</footer></body></html>", encoding="utf-8")
    doc = load(tmp_path)[0]["p.htm"]
    assert doc.published == published
    assert doc.title == "Plants in orbit"


def test_html_time_element_gives_the_date_and_the_title_loses_the_site_name(tmp_path):
    head = '<title>Science week | Space Daily</title><meta property="og:site_name" content="Space Daily">'
    body = '<time datetime="2020-05-06T10:00">May 6</time><p>' + "The station crew did science. " * 5 + "</p>"
    page = f"<html><head>{head}</head><body><article>{body}</article></body></html>"
    (tmp_path / "t.html").write_text(page, encoding="utf-8")
    doc = load(tmp_path)[0]["t.html"]
    assert (doc.published, doc.title, doc.source) == ("2020-05-06", "Science week", "Space Daily")


def test_pdf_text_is_its_pages_joined_and_page_of_finds_each_page(tmp_path):
    (tmp_path / "report.pdf").write_bytes(
        make_pdf([page_text(1), page_text(2), page_text(3)], title="Crew report")
    )
    doc = load(tmp_path)[0]["report.pdf"]
    assert doc.title == "Crew report" and doc.published is None
    assert len(doc.pages) == 3 and doc.pages[0] == 0
    ends = (*doc.pages[1:], len(doc.text) + 2)  # each page is followed by one blank line
    pages = [doc.text[start : end - 2] for start, end in zip(doc.pages, ends, strict=True)]
    assert doc.text == "\n\n".join(pages)
    for n, (start, page) in enumerate(zip(doc.pages, pages, strict=True), 1):
        assert page.startswith(f"Heading of page {n}\n\n")
        # the wrapped lines are one paragraph again, so no sentence is cut at a line break
        assert page.split("\n\n")[1] == page_text(n).strip()
        for offset in (start, start + len(page) // 2, start + len(page) - 1):
            assert page_of(doc.pages, offset) == n
        assert page_of(doc.pages, doc.text.index(f"Report page {n} says")) == n


def test_page_of():
    assert page_of((), 10) is None  # a format without pages
    assert page_of((0, 100, 250), -1) is None
    assert [page_of((0, 100, 250), o) for o in (0, 99, 100, 249, 250, 10_000)] == [1, 1, 2, 2, 3, 3]
    assert page_of((0, 5, 5, 9), 5) == 3  # an empty page 2 holds no character


def test_pdf_with_an_empty_page_keeps_the_page_count(tmp_path):
    (tmp_path / "gap.pdf").write_bytes(make_pdf([page_text(1), "", page_text(3)]))
    doc = load(tmp_path)[0]["gap.pdf"]
    assert len(doc.pages) == 3
    assert page_of(doc.pages, doc.text.index("Report page 3")) == 3
    assert doc.title == "Heading of page 1"  # no Title in the PDF: its first line


def test_bad_files_of_every_format_are_skipped_with_a_reason_beside_good_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_PDF_BYTES", 1024 * 1024)
    good_pdf = make_pdf([page_text(1), page_text(2)])
    zipped = tmp_path / "zip.txt"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.txt", "inside")
    files = {
        "good.txt": b"A readable article.",
        "good.html": ARTICLE_HTML.encode(),
        "good.pdf": good_pdf,
        "restricted.pdf": encrypt(good_pdf, ""),  # opens without a password: readable
        "nul.txt": b"text\x00with a NUL byte",
        "latin1.md": "caf\xe9".encode("latin-1"),
        "empty.pdf": b"",
        "truncated.pdf": good_pdf[: len(good_pdf) // 2],
        "locked.pdf": encrypt(good_pdf, "secret"),
        "scanned.pdf": make_pdf(["", ""]),
        "fake.pdf": b"<html>not a pdf</html>",
        "pdf.txt": good_pdf,
        "png.html": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "menu.html": b"<html><body><nav><a href='/'>Home</a></nav><footer>(c) 2020</footer></body></html>",
        "plain.html": b"Just text, no markup at all, in a file called .html",
        "big.txt": b"word " * (documents.MAX_BYTES // 5 + 1),
        "big.pdf": good_pdf + b"%" * 1024 * 1024,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    docs, skipped = load(tmp_path)
    assert sorted(docs) == ["good.html", "good.pdf", "good.txt", "restricted.pdf"]
    reasons = {path: s.reason for path, s in skipped.items()}
    assert reasons == {
        "nul.txt": "binary file (contains NUL bytes)",
        "latin1.md": "not UTF-8 text (bad byte at offset 3)",
        "empty.pdf": "empty file",
        "truncated.pdf": reasons["truncated.pdf"],
        "locked.pdf": "encrypted PDF (needs a password)",
        "scanned.pdf": "no extractable text in the PDF (scanned pages need OCR)",
        "fake.pdf": "not a PDF (does not start with %PDF-)",
        "pdf.txt": "binary file (PDF, not text)",
        "zip.txt": "binary file (ZIP or Office document, not text)",
        "png.html": "binary file (PNG image, not text)",
        "menu.html": "no main text found in the HTML",
        "plain.html": "not HTML (does not start with a tag)",
        "big.txt": "larger than 5 MiB",
        "big.pdf": "larger than 1 MiB",
    }
    assert reasons["truncated.pdf"].startswith("corrupt PDF (")
    assert all("\n" not in r and len(r) < 200 for r in reasons.values())
    assert all(s.sha256 for s in skipped.values())


def test_new_suffixes_are_candidates_and_reading_writes_nothing(tmp_path):
    (tmp_path / "a.HTML").write_text(ARTICLE_HTML, encoding="utf-8")
    (tmp_path / "b.htm").write_text(ARTICLE_HTML, encoding="utf-8")
    (tmp_path / "c.Pdf").write_bytes(make_pdf([page_text(1)]))
    (tmp_path / "d.docx").write_bytes(b"PK\x03\x04")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert [p.name for p in candidate_files(tmp_path)] == ["a.HTML", "b.htm", "c.Pdf"]
    docs, skipped = load(tmp_path)
    assert sorted(docs) == ["a.HTML", "b.htm", "c.Pdf"] and not skipped
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert document_ids(["a.html", "a.pdf", "b.htm"]) == {"a.html": "a-html", "a.pdf": "a-pdf", "b.htm": "b"}


def test_html_in_a_declared_legacy_charset_is_decoded(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head><body><article><p>'
    page += "The caf\xe9 on the station serves cr\xe8me br\xfbl\xe9e to the crew every Sunday." * 2
    (tmp_path / "l.html").write_bytes((page + "</p></article></body></html>").encode("latin-1"))
    doc = load(tmp_path)[0]["l.html"]
    assert doc.title == "Café" and "crème brûlée" in doc.text


# Wire furniture in the styles of several agencies, each as it would stand in an article, with the story
# sentence it must not swallow ("" when the whole paragraph is furniture).
CAPTIONS = [
    "FILE - In this Oct. 11, 2018 file photo, the Soyuz MS-10 spacecraft blasts off from Baikonur. "
    "(AP Photo/Dmitri Lovetsky, File)",
    "A Soyuz rocket stands on the launch pad in Baikonur, Kazakhstan, October 10, 2018. "
    "REUTERS/Shamil Zhumatov/File Photo",
    "Die Crew winkt vor dem Start. Foto: Bill Ingalls/NASA/dpa",
    "The crew of Expedition 68 in the Zvezda module (Photo by Joel Kowsky/NASA via Getty Images)",
    "Photo: Roscosmos press service/TASS",
    "EDITORS NOTE: EDITORIAL USE ONLY. MANDATORY CREDIT: NASA",
]
SIGN_OFFS = [
    "(AFP, dpa)",
    "(Reporting by Joey Roulette; Editing by Leslie Adler)",
    "© 2023 AFP",
    "(Interfax)",
]
DATELINES = [
    ("MOSCOW, Aug 24 (Reuters) - ", "Russia said on Thursday it would fly an American astronaut."),
    ("WASHINGTON (AP) — ", "NASA said the joint flights would resume."),
    ("MOSCOW, August 24. /TASS/. ", "Roscosmos agreed an extra Soyuz seat."),
    ("BERLIN — ", "The German space agency welcomed the deal."),
]
STORY = [
    "The US (NASA) and Russia agreed on cross flights in July 2022.",
    "Interfax said the deal was signed on Friday; the photo session followed.",
    "The astronauts spoke to reporters via video link (from orbit) on Monday.",
    "Copyright law was not discussed at the meeting in Moscow.",
]


def test_the_seed_caption_and_sign_off_are_recognised_as_boilerplate():
    _, body = split_front_matter(
        (DOCUMENTS / "2022-07-15-nasa-resumes-joint-iss-flights-with-russia.txt").read_text()
    )
    spans = documents.boilerplate(body)
    found = [body[a:b] for a, b in spans]
    assert found[0].startswith("(FILES) This NASA photo") and found[0].endswith(
        "DISTRIBUTED AS A SERVICE TO CLIENTS"
    )
    assert found[-1].strip() == "(AFP, dpa)" and body.rstrip().endswith(found[-1].strip())
    # The story between them is not touched.
    assert "The US space agency Nasa wants to resume cooperation" not in "".join(found)


@pytest.mark.parametrize("caption", CAPTIONS)
def test_captions_in_other_agencies_styles_are_whole_paragraphs_of_boilerplate(caption):
    text = f"The crew docked on Friday.\n\n{caption}\n\nThe next flight is planned for March."
    start = text.index(caption)
    assert documents.boilerplate(text) == ((start, start + len(caption)),)


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_agency_sign_offs_are_boilerplate_alone_or_closing_a_paragraph(sign_off):
    alone = f"The flight is planned for 2028.\n\n{sign_off}"
    assert [alone[a:b] for a, b in documents.boilerplate(alone)] == [sign_off]
    if sign_off.startswith("("):
        closing = f"The flight is planned for 2028. {sign_off}"
        assert [closing[a:b].strip() for a, b in documents.boilerplate(closing)] == [sign_off]


@pytest.mark.parametrize(("dateline", "story"), DATELINES)
def test_datelines_are_cut_from_the_story_they_open(dateline, story):
    text = dateline + story
    assert documents.boilerplate(text) == ((0, len(dateline)),)


@pytest.mark.parametrize("sentence", STORY)
def test_story_sentences_with_parentheses_or_agency_names_are_not_boilerplate(sentence):
    assert documents.boilerplate(f"{sentence}\n\nThe crew returned safely.") == ()


def test_no_shared_corpus_paragraph_is_taken_for_boilerplate():
    for path in sorted((SHARED / "corpora/wikipedia-space").iterdir()):
        assert documents.boilerplate(path.read_text(encoding="utf-8")) == (), path.name
