"""Checking and writing documents that arrive from outside (`POST /api/documents`, `issqa add`).

Plain file-system logic with no web framework, so the HTTP route and the command line share it. A
name becomes one safe file name directly inside the documents folder; content is refused up front for
exactly the reason the indexer would skip it; a write is atomic and never replaces a document unless
asked to. The order is `safe_name`, `with_metadata`, `check_content`, `save`, which `add` does in one call.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path, PurePosixPath

import yaml

from .documents import (
    METADATA_FIELDS,
    SUFFIXES,
    TEXT_SUFFIXES,
    TooLarge,
    UnreadableDocument,
    WrongType,
    iso_date,
    parse,
    read_front_matter,
)
from .errors import BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from .store import fsync_dir

MAX_NAME_BYTES = 200  # under the 255 bytes file systems allow, with room for an editor's backup suffix
TEMP_PREFIX = ".issqa-upload-"  # hidden, so the indexer never reads a file still being written


def safe_name(filename: str) -> str:
    """A safe file name for an upload: the last component of `filename`, normalised and checked.

    Directories are dropped (`/`, `\\`, `..`, absolute paths), so `../../x.txt` becomes `x.txt`. Names
    with control or invisible characters (NUL, right-to-left overrides, zero-width spaces) are refused
    rather than cleaned: such a name is hiding something. Hidden names and other suffixes are refused;
    a name over `MAX_NAME_BYTES` of UTF-8 is shortened, keeping its suffix.
    """
    name = unicodedata.normalize("NFKC", filename)  # full-width "．．／" becomes "../" before splitting
    if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") for ch in name):
        raise BadRequest("The file name contains control or invisible characters.", code="invalid_filename")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        raise BadRequest("The file name is empty once its folders are removed.", code="invalid_filename")
    if name.startswith("."):
        raise BadRequest(f"Hidden file names are not accepted: {name!r}.", code="invalid_filename")
    suffix = PurePosixPath(name).suffix
    if suffix.lower() not in SUFFIXES:
        raise UnsupportedMediaType(f"{name!r} is not a supported document: use {', '.join(SUFFIXES)}.")
    if len(name.encode()) > MAX_NAME_BYTES:
        room = MAX_NAME_BYTES - len(suffix.encode())
        name = name[: -len(suffix)].encode()[:room].decode(errors="ignore").rstrip(" .") + suffix
    return name


def with_metadata(name: str, data: bytes, meta: Mapping[str, str | None]) -> bytes:
    """`data` with `meta` (title, published, source, url) merged into its front matter.

    Only `.txt` and `.md` files have front matter: HTML and PDF carry their own metadata, so fields
    given for them are refused rather than silently dropped. Given fields replace the file's; its other
    keys and its body are kept (comments inside an existing block are not). `published` must be an
    ISO date and is stored as `YYYY-MM-DD`.
    """
    unknown = sorted(set(meta) - set(METADATA_FIELDS))
    if unknown:
        raise BadRequest(f"Unknown metadata field {unknown[0]!r}.", code="unknown_field")
    fields = {key: value.strip() for key, value in meta.items() if value is not None and value.strip()}
    if not fields:
        return data
    if PurePosixPath(name).suffix.lower() not in TEXT_SUFFIXES:
        raise BadRequest(
            f"Metadata can only be set on {' and '.join(TEXT_SUFFIXES)} files; {name!r} carries its own.",
            code="unsupported_metadata",
        )
    if "published" in fields:
        published = iso_date(fields["published"])
        if not published:
            raise BadRequest(
                f"'published' must be a date as YYYY-MM-DD, not {fields['published']!r}.",
                code="invalid_published",
            )
        fields["published"] = published
    try:
        existing, body = read_front_matter(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadRequest(f"Cannot add {name!r}: not UTF-8 text.", code="unreadable_document") from None
    except UnreadableDocument as exc:
        raise BadRequest(f"Cannot add {name!r}: {exc}.", code="unreadable_document") from None
    merged: dict[object, object] = dict(existing)
    merged.update(fields)
    block = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True)
    return f"---\n{block}---\n{body}".encode()


def check_content(name: str, data: bytes) -> None:
    """Refuse content the indexer would skip, with the same reason, before anything is written.

    Over the size limit is 413, content that is not what the suffix says (a `.txt` that is a PNG, a
    `.pdf` that is not a PDF) is 415, anything else unreadable (not UTF-8, empty, a corrupt or
    encrypted PDF, an HTML page without an article) is 400 `unreadable_document`.
    """
    if PurePosixPath(name).suffix.lower() not in SUFFIXES:
        raise UnsupportedMediaType(f"{name!r} is not a supported document: use {', '.join(SUFFIXES)}.")
    try:
        parse(data, name, "upload")
    except TooLarge as exc:
        raise PayloadTooLarge(f"Cannot add {name!r}: {exc}.") from None
    except WrongType as exc:
        raise UnsupportedMediaType(f"Cannot add {name!r}: {exc}.") from None
    except UnreadableDocument as exc:
        raise BadRequest(f"Cannot add {name!r}: {exc}.", code="unreadable_document") from None


def save(folder: Path, name: str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` as `folder/name` atomically and return its path.

    The bytes go to a hidden temporary file in the same folder and are flushed to disk; then the file
    appears under its name in one step: `os.replace` when replacing is allowed, else `os.link`, which
    fails if the name exists even when two uploads race (409 `conflict`). Readers see the whole file
    or none, and the temporary file is gone whatever happens. `name` goes through `safe_name`.
    """
    name = safe_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root / name
    if target.parent.resolve() != root:  # cannot happen after safe_name; checked all the same
        raise BadRequest(f"{name!r} is not inside the documents folder.", code="invalid_filename")
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a document is as readable as its folder
        if overwrite:
            os.replace(temp, target)
        else:
            os.link(temp, target)
    except (FileExistsError, IsADirectoryError):
        raise Conflict(f"A document named {name!r} already exists.") from None
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_dir(root)
    return target


def remove(folder: Path, relative_path: str) -> None:
    """Delete one document, named by its path relative to `folder` as the index lists it.

    Only a document file strictly inside `folder` can go: absolute paths, `..`, hidden parts and other
    suffixes are refused, and a symbolic link is removed itself, never what it points to.
    """
    rel = PurePosixPath(relative_path)
    if (
        not relative_path
        or rel.is_absolute()
        or any(ch in relative_path for ch in "\\\x00")
        or any(part == ".." or part.startswith(".") for part in rel.parts)
        or rel.suffix.lower() not in SUFFIXES
    ):
        raise BadRequest(f"{relative_path!r} is not a document path in the folder.", code="invalid_path")
    root = folder.resolve()
    target = root / rel
    if not target.parent.resolve().is_relative_to(root):  # a linked sub-folder leading elsewhere
        raise BadRequest(f"{relative_path!r} is not inside the documents folder.", code="invalid_path")
    try:
        target.unlink()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound(f"No document at {relative_path!r}.") from None
    fsync_dir(target.parent)


def add(
    folder: Path,
    filename: str,
    data: bytes,
    meta: Mapping[str, str | None] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Check and save one uploaded document in the right order; the path it was saved as."""
    name = safe_name(filename)
    data = with_metadata(name, data, meta or {})
    check_content(name, data)
    return save(folder, name, data, overwrite=overwrite)
