"""The JSON API blueprint and the one error handler that gives every error the same shape."""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from flask_limiter import RateLimitExceeded
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

from . import models, sse, uploads
from .documents import METADATA_FIELDS, Document, candidate_files, document_ids
from .engine import Engine
from .errors import HTTP_CODES, BadRequest, Forbidden, IssqaError, NotFound, RebuildInProgress, Unauthorized
from .jobs import read_job, start_rebuild
from .models import (
    AskCitations,
    AskDelta,
    DeleteResult,
    DocumentList,
    DocumentSummary,
    ErrorDetail,
    IndexStatus,
    JobAccepted,
    Limits,
    RebuildRequest,
    Rejected,
    Saved,
    UploadForm,
    UploadResult,
    answer_body,
    ask_request,
    error_body,
    parse,
    subset,
)
from .observability import log_unexpected, record_answer
from .store import read_manifest

bp = Blueprint("api", __name__, url_prefix="/api")


def engine() -> Engine:
    eng: Engine = current_app.extensions["issqa"]
    return eng


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
    asked = parse(ask_request(limits()), json_object())
    answer = engine().ask(asked.question, asked.top_k, [turn.model_dump() for turn in asked.history])
    record_answer(answer.answered)
    body = answer_body(answer)
    if wants_event_stream():
        return Response(_answer_events(body), content_type=sse.CONTENT_TYPE, headers=sse.HEADERS)
    return jsonify(body)


def wants_event_stream() -> bool:
    """Whether the client prefers `text/event-stream` to JSON (a plain or missing Accept means JSON)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/event-stream"])
    return best == "text/event-stream"


def _answer_events(body: dict[str, Any]) -> Iterator[str]:
    """The answer as events: `citations` first, then `delta` pieces of the answer, then `done` (the whole body).

    The citations come first so a page can show the sources while the text arrives; `done` carries the
    same body as the JSON response, so a client may simply wait for it.
    """
    yield sse.event(subset(AskCitations, body), "citations")
    for piece in sse.pieces(body["answer"]):
        yield sse.event(AskDelta(text=piece).model_dump(), "delta")
    yield sse.event(body, "done")


@bp.get("/documents")
def list_documents() -> Any:
    """Every indexed document with its metadata and passage count, in path order."""
    index = engine().index()
    counts = index.passage_counts()
    docs = sorted(index.documents().values(), key=lambda d: d.path)
    summaries = [_document_summary(d, counts.get(d.id, 0)) for d in docs]
    return jsonify(DocumentList(documents=summaries).model_dump())


@bp.get("/documents/<doc_id>")
def get_document(doc_id: str) -> Any:
    """One document's metadata, its full searchable text and its passages' offsets."""
    index = engine().index()
    doc = index.documents([doc_id]).get(doc_id)
    if doc is None:
        raise NotFound(f"No document with id {doc_id!r}.", code="document_not_found")
    passages = index.passages_of(doc_id)
    summary = _document_summary(doc, len(passages)).model_dump()
    offsets = [[p.start, p.end] for p in passages]
    return jsonify(models.Document(**summary, text=doc.text, passage_offsets=offsets).model_dump())


def _document_summary(doc: Document, passages: int) -> DocumentSummary:
    return DocumentSummary(
        id=doc.id,
        path=doc.path,
        title=doc.title,
        published=doc.published,
        source=doc.source,
        url=doc.url,
        passages=passages,
        size=len(doc.text.encode("utf-8")),
    )


@bp.get("/index")
def index_status() -> Any:
    """What the index holds, whether it is behind the documents, and the latest rebuild job."""
    return jsonify(status(engine()))


def status(eng: Engine) -> dict[str, Any]:
    """The index's state, shared by `GET /api/index` and `issqa status`."""
    manifest = read_manifest(eng.settings.index)
    job = read_job(eng.settings.index)
    return IndexStatus(
        documents_dir=str(eng.settings.documents),
        index_dir=str(eng.settings.index),
        model=eng.settings.model,
        built=manifest is not None,
        built_at=manifest.built_at if manifest else None,
        documents=len(manifest.documents) if manifest else 0,
        passages=manifest.passages if manifest else 0,
        skipped=manifest.skipped if manifest else {},
        stale=eng.staleness(),
        job=job.to_dict() if job else None,
    ).model_dump(mode="json")


@bp.post("/index/rebuild")
@admin_only
def rebuild() -> Any:
    """Start a background rebuild (incremental unless `{"full": true}`); 202 with the job, 409 if one runs."""
    body = parse(RebuildRequest, json_object()) if request.get_data(cache=True).strip() else RebuildRequest()
    job = start_rebuild(engine(), full=body.full)
    return _accepted(JobAccepted(job=job.to_dict()))


def _accepted(body: BaseModel) -> Any:
    """A 202 whose Location is where the job's progress can be followed."""
    return jsonify(body.model_dump(mode="json")), 202, {"Location": url_for("api.index_status")}


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
    form = parse(UploadForm, request.form.to_dict())
    overwrite = form.overwrite.strip().lower() in {"1", "true", "yes", "on"}
    meta = {key: value for key in METADATA_FIELDS if (value := getattr(form, key).strip())}
    if meta and len(files) > 1:
        raise BadRequest(
            "Metadata fields apply to one file; upload files one by one to set them.", code="invalid_metadata"
        )

    folder = engine().settings.documents
    saved: list[str] = []
    rejected: list[Rejected] = []
    first_error: IssqaError | None = None
    for upload in files:
        original = upload.filename or ""
        try:
            if uploads.safe_name(original) in saved:
                raise BadRequest(f"{original!r} appears twice in this upload.", code="duplicate_file")
            name = uploads.add(folder, original, upload.read(), meta, overwrite=overwrite).name
        except IssqaError as exc:
            first_error = first_error or exc
            rejected.append(
                Rejected(filename=original, error=ErrorDetail(code=exc.code, message=exc.message))
            )
            continue
        saved.append(name)
    if not saved and first_error is not None:
        raise first_error
    ids = document_ids([f.relative_to(folder).as_posix() for f in candidate_files(folder)])
    saved_ids = [Saved(id=ids.get(name), path=name) for name in saved]
    return _accepted(UploadResult(saved=saved_ids, rejected=rejected, job=_rebuild_or_running()))


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
    return _accepted(DeleteResult(deleted=Saved(id=doc_id, path=path), job=_rebuild_or_running()))


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


def limits() -> Limits:
    """This server's limits on questions and history, as `ask_request` enforces them."""
    return Limits.of(current_app.config)


def register_error_handlers(app: Flask) -> None:
    """Give every error, ours or Werkzeug's, the one JSON shape; never leak a stack trace."""

    @app.errorhandler(IssqaError)
    def issqa_error(exc: IssqaError) -> Any:
        return jsonify(error_body(exc.code, exc.message)), exc.status, dict(exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = HTTP_CODES.get(exc.code or 500) or (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if isinstance(exc, RateLimitExceeded):
            message = f"Too many requests: the limit is {exc.description} per client. Retry after the time in Retry-After."
        elif exc.code == 413:
            message = f"The request body is larger than the limit of {request.max_content_length} bytes."
        response = jsonify(error_body(code, message))
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log_unexpected(exc)
        return jsonify(error_body("internal_error", "Something went wrong on the server.")), 500
