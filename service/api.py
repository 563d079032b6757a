"""The JSON API blueprint and the one error handler that gives every error the same shape."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .documents import Document
from .engine import Engine
from .errors import BadRequest, IssqaError, NotFound

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

TOP_K_RANGE = (1, 20)
ASK_FIELDS = {"question", "top_k", "history"}
ROLES = {"user", "assistant"}
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def engine() -> Engine:
    return current_app.extensions["issqa"]


@bp.post("/ask")
def ask() -> Any:
    """Answer a question from the documents, with citations."""
    body = _json_object()
    question, top_k, history = _ask_fields(body, engine().settings.max_question_chars)
    return jsonify(engine().ask(question, top_k, history).to_dict())


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
    """What the index holds and whether it is current."""
    return jsonify(status(engine()))


def status(eng: Engine) -> dict[str, Any]:
    """The index's state, shared by `GET /api/index` and `issqa status`."""
    from .store import read_manifest

    manifest = read_manifest(eng.settings.index)
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
    }


def _json_object() -> dict[str, Any]:
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
    return body


def _ask_fields(body: dict[str, Any], max_chars: int) -> tuple[str, int | None, list[dict[str, str]]]:
    """Validate the fields of an ask request; every problem gets its own message."""
    unknown = sorted(set(body) - ASK_FIELDS)
    if unknown:
        raise BadRequest(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: question, top_k, history.",
            code="unknown_field",
        )
    question = body.get("question")
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
    top_k = body.get("top_k")
    if top_k is not None:
        low, high = TOP_K_RANGE
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise BadRequest("The field 'top_k' must be an integer.", code="invalid_top_k")
        if not low <= top_k <= high:
            raise BadRequest(f"The field 'top_k' must be between {low} and {high}.", code="invalid_top_k")
    history = body.get("history", [])
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
    return question, top_k, history


def register_error_handlers(app: Flask) -> None:
    """Give every error, ours or Werkzeug's, the one JSON shape; never leak a stack trace."""

    @app.errorhandler(IssqaError)
    def issqa_error(exc: IssqaError) -> Any:
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = HTTP_CODES.get(exc.code or 500) or (exc.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": {"code": code, "message": exc.description or exc.name}})
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error")
        body = {"error": {"code": "internal_error", "message": "Something went wrong on the server."}}
        return jsonify(body), 500
