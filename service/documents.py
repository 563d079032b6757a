"""Reading the documents folder into `Document`s, with their citation metadata.

A file may open with a small front-matter block (YAML between `---` lines) giving `title`,
`published`, `source` and `url`. The block is metadata only: offsets everywhere in iss-qa index the
body that follows it, so a citation's `start`/`end` slice exactly the text a reader sees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

SUFFIXES = (".txt", ".md")
MAX_BYTES = 5 * 1024 * 1024
METADATA_FIELDS = ("title", "published", "source", "url")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Document:
    """One article: its id, where it came from, its citation metadata and its searchable body."""

    id: str
    path: str  # relative to the documents folder, with forward slashes
    title: str
    published: str | None
    source: str | None
    url: str | None
    text: str
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A file that could not be indexed, and the one-line reason why."""

    path: str
    reason: str
    sha256: str


class UnreadableDocument(ValueError):
    """Raised for a file that cannot become a `Document`; its message is the one-line reason."""


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
    if not raw.strip():
        raise UnreadableDocument("empty file")
    if len(raw) > MAX_BYTES:
        raise UnreadableDocument(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in raw[:8192]:
        raise UnreadableDocument("binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    meta, body = split_front_matter(text)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise UnreadableDocument("no text after the front matter")
    title = meta.get("title") or _first_line_title(body) or Path(path).stem
    return Document(
        id=doc_id,
        path=path,
        title=title,
        published=meta.get("published"),
        source=meta.get("source"),
        url=meta.get("url"),
        text=body,
        sha256=file_hash(raw),
    )


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split `text` into its front-matter fields (strings) and the body after the block."""
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
    meta = {}
    for key in METADATA_FIELDS:
        value = data.get(key)
        if isinstance(value, dt.date):
            value = value.isoformat()
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    return meta, text[match.end() :]


def _first_line_title(body: str) -> str | None:
    """The first non-blank line, if it is short enough to be a title rather than a paragraph."""
    for line in body.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else None
    return None


def load_documents(folder: Path) -> Iterator[Document | Skipped]:
    """Read every candidate file under `folder`, yielding a `Document` or a `Skipped` for each.

    Reading never writes: the documents folder is the user's, and iss-qa only looks at it.
    """
    files = candidate_files(folder)
    rel_paths = [f.relative_to(folder).as_posix() for f in files]
    ids = document_ids(rel_paths)
    for file, rel in zip(files, rel_paths, strict=True):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            yield Skipped(rel, f"cannot read file ({exc.strerror})", "")
            continue
        try:
            yield parse(raw, rel, ids[rel])
        except UnreadableDocument as exc:
            yield Skipped(rel, str(exc), file_hash(raw))


def fingerprint(folder: Path) -> dict[str, str]:
    """Content hashes of every candidate file, keyed by relative path: what staleness compares."""
    result = {}
    for file in candidate_files(folder):
        try:
            result[file.relative_to(folder).as_posix()] = file_hash(file.read_bytes())
        except OSError:
            result[file.relative_to(folder).as_posix()] = ""
    return result
