"""Reading the documents folder into `Document`s, with their citation metadata.

Plain text and Markdown may open with a small front-matter block (YAML between `---` lines) giving
`title`, `published`, `source` and `url`. The block is metadata only: offsets everywhere in iss-qa
index the body that follows it, so a citation's `start`/`end` slice exactly the text a reader sees.
HTML pages give their article's main text (trafilatura drops menus, scripts, sidebars and footers)
and their metadata from meta tags; PDFs give their pages' text, and `pages` records where each page
starts so a citation can name its page.

A file's type is checked by its content as well as its name: a `.txt` that is really a PDF or an
image, or a `.pdf` that is not one, is skipped with a reason rather than read as something it is not.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from lxml.html import HtmlElement
    from pypdf import PdfReader

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
MAX_BYTES = 5 * 1024 * 1024
# A PDF carries fonts and images beside its text, so a few pages of news easily weigh several MiB.
MAX_PDF_BYTES = 32 * 1024 * 1024
MIN_HTML_WORDS = 5  # less than this is a menu or a "Home" link, not an article
METADATA_FIELDS = ("title", "published", "source", "url")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_SLUG = re.compile(r"[^a-z0-9]+")
_SPLIT_WORD = re.compile(r"\w-$")  # a PDF line ending in a hyphenated word ("well-" + "known")
_HTML_TITLES = (
    '//meta[@property="og:title"]/@content',
    '//meta[@name="twitter:title"]/@content',
    "//head/title//text()",
)
_FILE_NAME_TITLE = re.compile(r"\.(docx?|odt|rtf|pdf|txt|indd)$|^Microsoft Word - ", re.I)
# Content that is never text, whatever the file is called.
_BINARY_MAGIC = {
    b"%PDF-": "PDF",
    b"PK\x03\x04": "ZIP or Office document",
    b"\x89PNG": "PNG image",
    b"GIF8": "GIF image",
    b"\xff\xd8\xff": "JPEG image",
    b"\x7fELF": "executable",
    b"\x1f\x8b": "gzip archive",
    b"Rar!": "RAR archive",
    b"7z\xbc\xaf": "7-Zip archive",
}

# Wire-service furniture that is not the story (see `boilerplate`). Credits and usage notices mark a
# whole paragraph as a photo caption: captions are the paragraphs that carry them.
_CAPTION = re.compile(
    r"^\s*(?:\(FILES?\)|FILE(?: PHOTO)?\s*[-–—:]|File photo\b|(?:Photo|Image|Picture|Foto)s?\s*:)"
    r"|\((?:AP |AFP |Reuters )?Photos?\b[^)]*\)"
    r"|\([^()]*(?:\bvia (?:Getty Images|AP|AFP|Reuters|dpa|EPA)|/\s*(?:AP|AFP|Getty Images|Reuters|dpa|EPA|TASS))"
    r"\b[^()]*\)"
    r"|\bREUTERS/[A-Z]"
    r"|\b(?:Photo|Image|Picture|Foto|Credit)s?\s*:\s*[^.\n]{0,80}(?:/|\b(?:AP|AFP|Reuters|dpa|EPA|Getty|"
    r"NASA|Roscosmos|Interfax|TASS)\b)"
    r"|RESTRICTED TO EDITORIAL USE|EDITORIAL USE ONLY|MANDATORY CREDIT|NO MARKETING|NO ADVERTISING"
    r"|DISTRIBUTED AS A SERVICE TO CLIENTS",
    re.I | re.M,
)
_AGENCY = r"(?:AFP|AP|Reuters|dpa|DPA|Interfax|TASS|RIA(?: Novosti)?|UPI|EFE|ANSA|Xinhua|Kyodo|Bloomberg|PA|EPA|KNA|epd)"
# A paragraph that only signs off: "(AFP, dpa)", "(Reporting by ...; Editing by ...)", "© 2023 AFP".
_SIGN_OFF = re.compile(
    rf"^\s*\(?\s*{_AGENCY}(?:\s*[,/;&]\s*{_AGENCY}|\s+and\s+{_AGENCY})*\s*\)?\s*$"
    r"|^\s*\(?\s*(?:Additional )?(?:Reporting|Writing|Editing|Compiled|Edited) by\b[^\n]{0,300}$"
    r"|^\s*(?:©|\(c\)|Copyright (?:©|\(c\)|\d{4}))[^\n]{0,200}$",
    re.I,
)
# The same sign-off closing a paragraph of story: "... in 2028. (AFP, dpa)".
_TRAILING_SIGN_OFF = re.compile(
    rf"\s*\(\s*(?:{_AGENCY}(?:\s*[,/;&]\s*{_AGENCY})*|(?:Additional )?(?:Reporting|Writing|Editing) by\b[^()]*)"
    r"\s*\)\s*$",
)
# "MOSCOW, Aug 24 (Reuters) - ", "WASHINGTON (AP) — ", "MOSCOW, August 24. /TASS/. ", "BERLIN — ".
_DATELINE = re.compile(
    r"^\s*[A-Z][\w'.-]*(?:[ ,]+[A-Z][\w'.-]*){0,3}(?:,\s*[A-Z][a-z]{2,8}\.?\s+\d{1,2}(?:,\s*\d{4})?\.?)?"
    rf"\s*(?:\(\s*{_AGENCY}\s*\)\s*[-–—:]+|/\s*{_AGENCY}\s*/\.?|(?<=[A-Z]{{3}})\s+[-–—]{{1,2}})\s+"
)
_PARAGRAPHS = re.compile(r"[^\n]+(?:\n(?![ \t]*\n)[^\n]*)*")


def boilerplate(text: str) -> tuple[tuple[int, int], ...]:
    """Spans of `text` that are wire furniture, not story: photo captions and credits, usage notices,
    agency sign-offs and datelines.

    They stay in the document (a reader sees them), but never become passages, so they are never
    quoted as an answer nor its only evidence. Recognised by the shapes wire services share (AFP, AP,
    Reuters, dpa, Interfax, TASS), never by one article's words.
    """
    spans = []
    for match in _PARAGRAPHS.finditer(text):
        start, end = match.span()
        paragraph = match.group()
        if _CAPTION.search(paragraph) or _SIGN_OFF.match(paragraph):
            spans.append((start, end))
            continue
        dateline = _DATELINE.match(paragraph)
        if dateline and dateline.end() < len(paragraph):
            spans.append((start, start + dateline.end()))
        sign_off = _TRAILING_SIGN_OFF.search(paragraph)
        if sign_off and sign_off.start() > 0:
            spans.append((start + sign_off.start(), end))
    return tuple(spans)


@dataclass(frozen=True)
class Document:
    """One article: its id, where it came from, its citation metadata and its searchable body."""

    id: str
    path: str  # relative to the documents folder, with forward slashes
    title: str
    published: str | None  # ISO YYYY-MM-DD when the source gives a recognisable date
    source: str | None
    url: str | None
    text: str
    sha256: str
    # Offsets in `text` where each page starts (PDFs); empty for formats without pages. Last, with a
    # default, because the store builds a `Document` positionally from its eight columns.
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A file that could not be indexed, and the one-line reason why."""

    path: str
    reason: str
    sha256: str


@dataclass(frozen=True)
class Unchanged:
    """A file a previous build indexed with this content and id: reused as it is, never parsed again."""

    path: str
    sha256: str


class UnreadableDocument(ValueError):
    """Raised for a file that cannot become a `Document`; its message is the one-line reason."""


class TooLarge(UnreadableDocument):
    """The file is over the size limit for its type (an upload answers 413)."""


class WrongType(UnreadableDocument):
    """The content is not what the file name says (an upload answers 415)."""


def candidate_files(folder: Path) -> list[Path]:
    """Every file iss-qa would try to read under `folder`, sorted, hidden files and folders excluded."""
    if not folder.is_dir():
        return []
    files = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            files.append(path)
    return sorted(files)


def file_hash(data: bytes) -> str:
    """The content hash that decides whether a document changed since the last build."""
    return hashlib.sha256(data).hexdigest()


def slugify(text: str) -> str:
    """A lowercase, dash-separated form of `text`, used for document ids."""
    return _SLUG.sub("-", text.lower()).strip("-")


def document_ids(paths: list[str]) -> dict[str, str]:
    """Stable, readable ids for relative paths: the path without its suffix, slugified.

    Two files that differ only by suffix (`a.txt`, `a.md`) keep the suffix in their ids.
    """
    stems = {p: slugify(str(Path(p).with_suffix(""))) or "document" for p in paths}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {p: (stem if counts[stem] == 1 else slugify(p)) for p, stem in stems.items()}


def parse(raw: bytes, path: str, doc_id: str) -> Document:
    """Turn a file's bytes into a `Document`, or raise `UnreadableDocument` saying why not."""
    suffix = Path(path).suffix.lower()
    check_file(raw, suffix)
    pages: tuple[int, ...] = ()
    if suffix in PDF_SUFFIXES:
        meta, text, pages = _read_pdf(raw)
    elif suffix in HTML_SUFFIXES:
        meta, text = _read_html(raw)
    else:
        meta, text = _read_text(raw)
    title = meta.get("title") or _first_line_title(text) or Path(path).stem
    return Document(
        id=doc_id,
        path=path,
        title=title,
        published=meta.get("published"),
        source=meta.get("source"),
        url=meta.get("url"),
        text=text,
        sha256=file_hash(raw),
        pages=pages,
    )


def size_limit(suffix: str) -> int:
    """The largest file, in bytes, that iss-qa reads for a suffix."""
    return MAX_PDF_BYTES if suffix.lower() in PDF_SUFFIXES else MAX_BYTES


def check_file(raw: bytes, suffix: str) -> None:
    """Refuse an empty, oversized or mistyped file before any parser sees it.

    The content decides, not the name alone: a PDF must start with `%PDF-`, and text or HTML must not
    be a known binary format or contain NUL bytes.
    """
    suffix = suffix.lower()
    if not raw.strip():
        raise UnreadableDocument("empty file")
    limit = size_limit(suffix)
    if len(raw) > limit:
        raise TooLarge(f"larger than {limit // (1024 * 1024)} MiB")
    if suffix in PDF_SUFFIXES:
        if not raw.startswith(b"%PDF-"):
            raise WrongType("not a PDF (does not start with %PDF-)")
        return
    kind = next((kind for magic, kind in _BINARY_MAGIC.items() if raw.startswith(magic)), None)
    if kind:
        raise WrongType(f"binary file ({kind}, not text)")
    if b"\x00" in raw[:8192]:
        raise WrongType("binary file (contains NUL bytes)")
    if suffix in HTML_SUFFIXES and not raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise WrongType("not HTML (does not start with a tag)")


def page_of(pages: tuple[int, ...], offset: int) -> int | None:
    """The 1-based page holding character `offset` of a document's text; None without pages."""
    if not pages or offset < 0:
        return None
    return max(bisect.bisect_right(pages, offset), 1)


def _read_text(raw: bytes) -> tuple[dict[str, str], str]:
    """Front matter and body of a UTF-8 text or Markdown file, line endings normalised."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    meta, body = split_front_matter(text)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise UnreadableDocument("no text after the front matter")
    return meta, body


def _read_html(raw: bytes) -> tuple[dict[str, str], str]:
    """An HTML page's main text, one paragraph per block, with its title, date, site name and URL.

    trafilatura finds the article among menus, scripts, sidebars and footers and reads the meta tags
    (`article:published_time`, `<meta name="date">`, `<time datetime>`, JSON-LD, `og:site_name`,
    canonical link). The date comes only from markup and the URL, never guessed from the text, so a
    footer's year is not a date. The title is `og:title`, else `<title>` without its site name.
    """
    import trafilatura  # on first use: a third of a second to import, and most folders hold no HTML
    from trafilatura.settings import Document as TrafilaturaDocument

    try:
        tree = trafilatura.load_html(raw)  # decodes by the page's declared or detected charset
        title = _html_title(tree) if tree is not None else None
        found = (
            trafilatura.bare_extraction(
                tree,
                with_metadata=True,
                favor_precision=True,
                include_comments=False,
                date_extraction_params={"extensive_search": False, "original_date": True},
            )
            if tree is not None
            else None
        )
    except Exception as exc:  # a damaged page must skip its file, never stop the others
        raise UnreadableDocument(_because("unreadable HTML", exc)) from None
    if not isinstance(found, TrafilaturaDocument):
        raise UnreadableDocument("no main text found in the HTML")
    text = "\n\n".join(block for block in _blocks(found.body) if block)
    if len(text.split()) < MIN_HTML_WORDS:
        raise UnreadableDocument("no main text found in the HTML")
    if title and found.sitename:
        title = re.sub(rf"\s+[|\-–—:·]\s+{re.escape(found.sitename)}$", "", title)
    fields = {"title": title, "published": found.date, "source": found.sitename, "url": found.url}
    return {key: value.strip() for key, value in fields.items() if value and value.strip()}, text


def _html_title(tree: HtmlElement) -> str | None:
    """The page's own headline: `og:title`, else `twitter:title`, else `<title>`."""
    for path in _HTML_TITLES:
        found = " ".join(" ".join(str(value) for value in tree.xpath(path)).split())
        if found:
            return found
    return None


def _blocks(element: HtmlElement) -> Iterator[str]:
    """The text of each paragraph, heading, list item or table row in trafilatura's output tree.

    Its text keeps the page source's line breaks inside a paragraph; they are spaces to a reader.
    """
    for child in element:
        if child.tag in ("list", "table", "quote", "div") and len(child):
            yield from _blocks(child)
        elif child.tag == "row":
            yield " ".join(_squeeze("".join(cell.itertext())) for cell in child)
        else:
            yield _squeeze("".join(child.itertext()))  # its own tail is not included
        yield _squeeze(child.tail or "")


def _squeeze(text: str) -> str:
    """`text` with every run of whitespace, line breaks included, made one space."""
    return " ".join(text.split())


def _read_pdf(raw: bytes) -> tuple[dict[str, str], str, tuple[int, ...]]:
    """A PDF's pages' text joined by blank lines, its title, and the offset where each page starts.

    Only the document's own Title is used: its creation date is when the file was made, which for a
    saved or printed article is not when it was published.
    """
    import pypdf  # on first use, like trafilatura

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damage it works around is not worth a line
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not _decrypts(reader):
            raise UnreadableDocument("encrypted PDF (needs a password)")
        texts = [_reflow(page.extract_text() or "") for page in reader.pages]
        title = str(reader.metadata.title or "").strip() if reader.metadata else ""
    except UnreadableDocument:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files; each is just a skip
        raise UnreadableDocument(_because("corrupt PDF", exc)) from None
    if not any(texts):
        raise UnreadableDocument("no extractable text in the PDF (scanned pages need OCR)")
    starts, offset = [], 0
    for page in texts:
        starts.append(offset)
        offset += len(page) + 2
    meta = {"title": title} if title and not _FILE_NAME_TITLE.search(title) else {}
    return meta, "\n\n".join(texts), tuple(starts)


def _decrypts(reader: PdfReader) -> bool:
    """Whether an encrypted PDF opens with the empty password (restrictions only, no secret)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _reflow(page: str) -> str:
    """A PDF page's wrapped lines joined back into paragraphs, separated by blank lines.

    PDFs store lines, not paragraphs, and a line break would otherwise end a sentence mid-way. A line
    clearly shorter than the page's longest ends its paragraph: a last line, a heading, a caption.
    """
    lines = [" ".join(line.split()) for line in page.splitlines()]
    width = max(map(len, lines), default=0)
    paragraphs, current = [], ""
    for line in lines:
        if line:
            current += ("" if not current or _SPLIT_WORD.search(current) else " ") + line
        if current and (not line or len(line) < 0.75 * width):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def _because(what: str, exc: Exception) -> str:
    """A one-line reason naming the library's complaint, kept short."""
    detail = " ".join(str(exc).split())[:120]
    return f"{what} ({type(exc).__name__}{': ' + detail if detail else ''})"


def iso_date(value: object) -> str | None:
    """`value` as ISO `YYYY-MM-DD` if it is a date, a date-time or an ISO string of one, else None."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).date().isoformat()
        except ValueError:
            return None
    return None


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split `text` into its front-matter fields (strings) and the body after the block.

    A `published` date or date-time becomes `YYYY-MM-DD`; one in another form is kept as written.
    """
    data, body = read_front_matter(text)
    meta = {}
    for key in METADATA_FIELDS:
        value = data.get(key)
        if key == "published":
            value = iso_date(value) or value
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    return meta, body


def read_front_matter(text: str) -> tuple[dict[object, object], str]:
    """The whole YAML mapping of `text`'s front-matter block (empty without one) and the body after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark else ""
        raise UnreadableDocument(f"invalid front matter{where}") from None
    if not isinstance(data, dict):
        raise UnreadableDocument("invalid front matter (expected 'key: value' lines)")
    return data, text[match.end() :]


def _first_line_title(body: str) -> str | None:
    """The first non-blank line, if it is short enough to be a title rather than a paragraph."""
    for line in body.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else None
    return None


@dataclass(frozen=True)
class Pending:
    """A file whose content no previous build indexed: still to be read as a `Document` (`read_document`)."""

    path: str
    id: str


def survey(
    folder: Path, known: Mapping[str, tuple[str, str]] | None = None
) -> Iterator[Pending | Skipped | Unchanged]:
    """Hash every candidate file under `folder`, without parsing any.

    `known` maps paths to the (id, sha256) a previous build indexed them under: such a file, still
    the same, is `Unchanged`; an unreadable one is `Skipped`; the rest are `Pending`. A distributed
    build reads the pending files where it embeds them; `load_documents` reads them here.
    """
    for item in _hashed(folder, known):
        yield Pending(item[1], item[2]) if isinstance(item, tuple) else item


def load_documents(
    folder: Path, known: Mapping[str, tuple[str, str]] | None = None
) -> Iterator[Document | Skipped | Unchanged]:
    """Read every candidate file under `folder`, yielding a `Document` or a `Skipped` for each.

    Files `known` to a previous build with the same content are yielded as `Unchanged` without being
    parsed (see `survey`). Reading never writes: the documents folder is the user's, and iss-qa only
    looks at it.
    """
    for item in _hashed(folder, known):
        yield read_document(*item) if isinstance(item, tuple) else item


def read_document(raw: bytes, path: str, doc_id: str) -> Document | Skipped:
    """One file's bytes as a `Document`, or a `Skipped` saying why not: a bad file never stops the others."""
    try:
        return parse(raw, path, doc_id)
    except UnreadableDocument as exc:
        return Skipped(path, str(exc), file_hash(raw))


def _hashed(
    folder: Path, known: Mapping[str, tuple[str, str]] | None
) -> Iterator[tuple[bytes, str, str] | Skipped | Unchanged]:
    """Each candidate file as (bytes, path, id), unless unreadable (`Skipped`) or known (`Unchanged`)."""
    files = candidate_files(folder)
    rel_paths = [f.relative_to(folder).as_posix() for f in files]
    ids = document_ids(rel_paths)
    for file, rel in zip(files, rel_paths, strict=True):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            yield Skipped(rel, f"cannot read file ({exc.strerror})", "")
            continue
        sha = file_hash(raw)
        if known and known.get(rel) == (ids[rel], sha):
            yield Unchanged(rel, sha)
        else:
            yield raw, rel, ids[rel]


def fingerprint(folder: Path) -> dict[str, str]:
    """Content hashes of every candidate file, keyed by relative path: what staleness compares."""
    result = {}
    for file in candidate_files(folder):
        try:
            result[file.relative_to(folder).as_posix()] = file_hash(file.read_bytes())
        except OSError:
            result[file.relative_to(folder).as_posix()] = ""
    return result
