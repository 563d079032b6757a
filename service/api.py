"""The JSON API blueprint and the one error handler that gives every error the same shape."""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from . import sse, uploads
from .documents import Document, candidate_files, document_ids
from .engine import Engine
from .errors import BadRequest, Forbidden, IssqaError, NotFound, RebuildInProgress, Unauthorized
from .jobs import read_job, start_rebuild
from .observability import log_unexpected, record_answer
from .store import read_manifest

bp = Blueprint("api", __name__, url_prefix="/api")

TOP_K_RANGE = (1, 20)
ASK_FIELDS = {"question", "top_k", "history"}
ROLES = {"user", "assistant"}
UPLOAD_FIELDS = {"title", "published", "source", "url", "overwrite"}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def engine() -> Engine:
    return current_app.extensions["issqa"]


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let a request through only with `Authorization: Bearer <ISSQA_ADMIN_TOKEN>`.

    Without a configured token the writing endpoints are off (403), so a fresh install never exposes
    them by accident; the comparison takes the same time whatever the guess.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = str(current_app.config.get("ADMIN_TOKEN") or "")
        if not token:
            raise Forbidden(
                "Document management is turned off. Start the server with ISSQA_ADMIN_TOKEN set to a "
                "secret and send it as 'Authorization: Bearer <token>'.",
                code="admin_disabled",
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), token.encode("utf-8")
        ):
            raise Unauthorized(
                "This endpoint needs 'Authorization: Bearer <token>' with the server's ISSQA_ADMIN_TOKEN.",
                code="unauthorized",
            )
        return view(*args, **kwargs)

    return wrapper


@bp.post("/ask")
def ask() -> Any:
    """Answer a question from the documents, with citations; as server-sent events when asked to."""
    body = json_object()
    question, top_k, history = _ask_fields(body, engine().settings.max_question_chars)
    answer = engine().ask(question, top_k, history)
    record_answer(answer.answered)
    if wants_event_stream():
        return Response(_answer_events(answer.to_dict()), content_type=sse.CONTENT_TYPE, headers=sse.HEADERS)
    return jsonify(answer.to_dict())


def wants_event_stream() -> bool:
    """Whether the client prefers `text/event-stream` to JSON (a plain or missing Accept means JSON)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/event-stream"])
    return best == "text/event-stream"


def _answer_events(body: dict[str, Any]) -> Iterator[str]:
    """The answer as events: `citations` first, then `delta` pieces of the answer, then `done` (the whole body).

    The citations come first so a page can show the sources while the text arrives; `done` carries the
    same body as the JSON response, so a client may simply wait for it.
    """
    yield sse.event(
        {"question": body["question"], "answered": body["answered"], "citations": body["citations"]},
        "citations",
    )
    for piece in sse.pieces(body["answer"]):
        yield sse.event({"text": piece}, "delta")
    yield sse.event(body, "done")


@bp.get("/documents")
def list_documents() -> Any:
    """Every indexed document with its metadata and passage count, in path order."""
    index = engine().index()
    counts = index.passage_counts()
    docs = sorted(index.documents().values(), key=lambda d: d.path)
    return jsonify({"documents": [_document_summary(d, counts.get(d.id, 0)) for d in docs]})


@bp.get("/documents/<doc_id>")
def get_document(doc_id: str) -> Any:
    """One document's metadata, its full searchable text and its passages' offsets."""
    index = engine().index()
    doc = index.documents([doc_id]).get(doc_id)
    if doc is None:
        raise NotFound(f"No document with id {doc_id!r}.", code="document_not_found")
    passages = index.passages_of(doc_id)
    return jsonify(
        {
            **_document_summary(doc, len(passages)),
            "text": doc.text,
            "passage_offsets": [[p.start, p.end] for p in passages],
        }
    )


def _document_summary(doc: Document, passages: int) -> dict[str, Any]:
    return {
        "id": doc.id,
        "path": doc.path,
        "title": doc.title,
        "published": doc.published,
        "source": doc.source,
        "url": doc.url,
        "passages": passages,
        "size": len(doc.text.encode("utf-8")),
    }


@bp.get("/index")
def index_status() -> Any:
    """What the index holds, whether it is behind the documents, and the latest rebuild job."""
    return jsonify(status(engine()))


def status(eng: Engine) -> dict[str, Any]:
    """The index's state, shared by `GET /api/index` and `issqa status`."""
    manifest = read_manifest(eng.settings.index)
    job = read_job(eng.settings.index)
    return {
        "documents_dir": str(eng.settings.documents),
        "index_dir": str(eng.settings.index),
        "model": eng.settings.model,
        "built": manifest is not None,
        "built_at": manifest.built_at if manifest else None,
        "documents": len(manifest.documents) if manifest else 0,
        "passages": manifest.passages if manifest else 0,
        "skipped": manifest.skipped if manifest else {},
        "stale": eng.staleness(),
        "job": job.to_dict() if job else None,
    }


@bp.post("/index/rebuild")
@admin_only
def rebuild() -> Any:
    """Start a background rebuild (incremental unless `{"full": true}`); 202 with the job, 409 if one runs."""
    full = False
    if request.get_data(cache=True).strip():
        body = json_object()
        unknown = sorted(set(body) - {"full"})
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(unknown)}. Allowed: full.", code="unknown_field")
        full = body.get("full", False)
        if not isinstance(full, bool):
            raise BadRequest("The field 'full' must be true or false.", code="invalid_full")
    job = start_rebuild(engine(), full=full)
    return _accepted({"job": job.to_dict()})


def _accepted(body: dict[str, Any]) -> Any:
    """A 202 whose Location is where the job's progress can be followed."""
    return jsonify(body), 202, {"Location": url_for("api.index_status")}


@bp.post("/documents")
@admin_only
def upload_documents() -> Any:
    """Add documents (multipart, field `file`, one or more), then rebuild the index in the background.

    Each file is checked on its own: good ones are saved even when another is refused, and the
    answer lists both. Optional form fields: title, published, source, url (one file only), overwrite.
    """
    request.max_content_length = int(current_app.config["MAX_UPLOAD_BYTES"])
    files = request.files.getlist("file") + request.files.getlist("files")
    if not files:
        raise BadRequest("Send the documents as multipart/form-data in the field 'file'.", code="no_files")
    form = request.form.to_dict()
    unknown = sorted(set(form) - UPLOAD_FIELDS)
    if unknown:
        raise BadRequest(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(UPLOAD_FIELDS))}.",
            code="unknown_field",
        )
    overwrite = form.pop("overwrite", "false").strip().lower() in {"1", "true", "yes", "on"}
    meta = {k: v.strip() for k, v in form.items() if v.strip()}
    if meta and len(files) > 1:
        raise BadRequest(
            "Metadata fields apply to one file; upload files one by one to set them.", code="invalid_metadata"
        )

    folder = engine().settings.documents
    saved: list[str] = []
    rejected: list[dict[str, Any]] = []
    first_error: IssqaError | None = None
    for upload in files:
        original = upload.filename or ""
        try:
            if uploads.safe_name(original) in saved:
                raise BadRequest(f"{original!r} appears twice in this upload.", code="duplicate_file")
            name = uploads.add(folder, original, upload.read(), meta, overwrite=overwrite).name
        except IssqaError as exc:
            first_error = first_error or exc
            rejected.append({"filename": original, "error": exc.to_dict()["error"]})
            continue
        saved.append(name)
    if not saved and first_error is not None:
        raise first_error
    ids = document_ids([f.relative_to(folder).as_posix() for f in candidate_files(folder)])
    body: dict[str, Any] = {
        "saved": [{"id": ids.get(name), "path": name} for name in saved],
        "rejected": rejected,
    }
    body["job"] = _rebuild_or_running()
    return _accepted(body)


@bp.delete("/documents/<doc_id>")
@admin_only
def delete_document(doc_id: str) -> Any:
    """Remove one document's file from the documents folder, then rebuild the index in the background."""
    folder = engine().settings.documents
    on_disk = document_ids([f.relative_to(folder).as_posix() for f in candidate_files(folder)])
    path = next((p for p, i in on_disk.items() if i == doc_id), None)
    if path is None:
        raise NotFound(f"No document with id {doc_id!r}.", code="document_not_found")
    uploads.remove(folder, path)
    return _accepted({"deleted": {"id": doc_id, "path": path}, "job": _rebuild_or_running()})


def _rebuild_or_running() -> dict[str, Any] | None:
    """Start an incremental rebuild, or, when one is running, the job that will pick the change up.

    A running job checks the documents again when it finishes and makes another pass if they changed.
    """
    try:
        return start_rebuild(engine()).to_dict()
    except RebuildInProgress:
        job = read_job(engine().settings.index)
        return job.to_dict() if job else None


def json_object() -> dict[str, Any]:
    """The request body parsed as a JSON object, or a clear 400."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest(
            'The request body is empty; send a JSON object such as {"question": "..."}.', code="empty_body"
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON ({exc}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    try:  # JSON escapes can spell unpaired surrogates, which are not text and break the tokenizer
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "The request body holds invalid Unicode (an unpaired surrogate escape such as \\ud800).",
            code="invalid_json",
        ) from None
    return body


def _ask_fields(body: dict[str, Any], max_chars: int) -> tuple[str, int | None, list[dict[str, str]]]:
    """Validate the fields of an ask request; every problem gets its own message."""
    unknown = sorted(set(body) - ASK_FIELDS)
    if unknown:
        raise BadRequest(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: question, top_k, history.",
            code="unknown_field",
        )
    question = check_question(body.get("question"), max_chars)
    top_k = check_top_k(body.get("top_k"))
    history = check_history(body.get("history", []))
    return question, top_k, history


def check_top_k(top_k: Any) -> int | None:
    """`top_k` when it is absent or an integer in range, else a 400."""
    if top_k is not None:
        low, high = TOP_K_RANGE
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise BadRequest("The field 'top_k' must be an integer.", code="invalid_top_k")
        if not low <= top_k <= high:
            raise BadRequest(f"The field 'top_k' must be between {low} and {high}.", code="invalid_top_k")
    return top_k


def check_question(question: Any, max_chars: int) -> str:
    """The question stripped of surrounding whitespace, or a 400 saying what is wrong with it."""
    if question is None:
        raise BadRequest("The field 'question' is required.", code="missing_question")
    if not isinstance(question, str):
        raise BadRequest("The field 'question' must be a string.", code="invalid_question")
    question = question.strip()
    if not question:
        raise BadRequest("The field 'question' is empty.", code="empty_question")
    if len(question) > max_chars:
        raise BadRequest(
            f"The question is {len(question)} characters long; the limit is {max_chars}.",
            code="question_too_long",
        )
    return question


def history_limits() -> tuple[int, int]:
    """How many history entries, and how many characters in all, one request may carry."""
    return int(current_app.config["MAX_HISTORY_TURNS"]), int(current_app.config["MAX_HISTORY_CHARS"])


def check_history(history: Any) -> list[dict[str, str]]:
    """A valid `history` list within the limits, or a 400: it is read on every request, so its size is bounded."""
    if not isinstance(history, list):
        raise BadRequest(
            "The field 'history' must be a list of {role, content} objects.", code="invalid_history"
        )
    for i, turn in enumerate(history):
        if (
            not isinstance(turn, dict)
            or set(turn) != {"role", "content"}
            or turn["role"] not in ROLES
            or not isinstance(turn["content"], str)
        ):
            raise BadRequest(
                f'history[{i}] must be an object {{"role": "user"|"assistant", "content": str}}.',
                code="invalid_history",
            )
    max_turns, max_chars = history_limits()
    if len(history) > max_turns:
        raise BadRequest(
            f"The history has {len(history)} entries; the limit is {max_turns} (send the most recent ones).",
            code="history_too_long",
        )
    chars = sum(len(turn["content"]) for turn in history)
    if chars > max_chars:
        raise BadRequest(
            f"The history holds {chars} characters; the limit is {max_chars} (send the most recent turns).",
            code="history_too_long",
        )
    return history


def register_error_handlers(app: Flask) -> None:
    """Give every error, ours or Werkzeug's, the one JSON shape; never leak a stack trace."""

    @app.errorhandler(IssqaError)
    def issqa_error(exc: IssqaError) -> Any:
        return jsonify(exc.to_dict()), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = HTTP_CODES.get(exc.code or 500) or (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if isinstance(exc, RateLimitExceeded):
            message = f"Too many requests: the limit is {exc.description} per client. Retry after the time in Retry-After."
        elif exc.code == 413:
            message = f"The request body is larger than the limit of {request.max_content_length} bytes."
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log_unexpected(exc)
        body = {"error": {"code": "internal_error", "message": "Something went wrong on the server."}}
        return jsonify(body), 500
