"""The OpenAPI 3.1 description of every route (`GET /openapi.json`) and a readable page for it (`GET /docs`).

Every schema is generated from service/models.py, the models that also validate the requests and
build the responses; this module adds only what a model cannot say: each route's method, summary,
statuses and media types (plain Pydantic rather than spectree, flask-openapi3 or APIFlask: README,
"How it works", says why). The document is built from the app's configuration, so the limits it states
are the ones enforced; tests check that it names every route the app has and that live responses match it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from pydantic import BaseModel, NonNegativeInt, TypeAdapter

from . import models as m

bp = Blueprint("docs", __name__)

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
ERROR_CODES = {
    400: "The request is malformed or a field is invalid; `code` says which (for example `invalid_json`, "
    "`missing_question`, `question_too_long`, `invalid_top_k`, `invalid_history`, `history_too_long`, "
    "`unknown_field`, `invalid_messages`).",
    401: "A writing endpoint without the right `Authorization: Bearer <token>` (`unauthorized`).",
    403: "Document management is off because no `ISSQA_ADMIN_TOKEN` is set (`admin_disabled`).",
    404: "No such route, document or model (`not_found`, `document_not_found`, `model_not_found`).",
    409: "A rebuild is already running (`rebuild_in_progress`), or an upload would replace a document "
    "without `overwrite` (`conflict`).",
    413: "The request body or a file is over the size limit (`payload_too_large`).",
    415: "A file of a kind iss-qa does not read, or whose content is not what its name says "
    "(`unsupported_media_type`).",
    429: "Too many requests from this client (`too_many_requests`); the `Retry-After` header says how many "
    "seconds to wait.",
    500: "An unexpected error (`internal_error`); the message never includes internals.",
    503: "No usable index: missing, stale or unreadable (`index_not_ready`); the message says what to run.",
}
TAGS = {
    "answers": "Questions and answers.",
    "documents": "What is indexed.",
    "openai": "OpenAI-compatible endpoints for existing clients.",
    "operations": "Health, readiness, metrics and this description.",
    "page": "The chat page and its files.",
}
METRICS = """\
Requests by route, method and status (`issqa_http_requests_total`), latency histograms
(`issqa_http_request_duration_seconds`), answers and refusals (`issqa_answers_total`), documents and passages
indexed (`issqa_index_documents`, `issqa_index_passages`), index builds (`issqa_index_rebuilds_total`) and
when the index was built (`issqa_index_built_timestamp_seconds`)."""


@dataclass(frozen=True)
class Op:
    """One operation: what its models cannot say about a route."""

    method: str
    path: str
    id: str
    tag: str
    summary: str
    ok: type[BaseModel] | tuple[str, Any]  # the success body: a model, or a media type and a Python type
    errors: tuple[int, ...] = ()  # besides 500, which any operation may answer
    body: type[BaseModel] | None = None
    stream: type[BaseModel] | None = None  # the events sent instead of JSON for `Accept: text/event-stream`
    status: int = 200
    description: str | None = None
    admin: bool = False  # needs the bearer token
    body_required: bool = True
    body_type: str = JSON


def operations(limits: m.Limits) -> list[Op]:
    """Every route the app serves, with the models of its bodies."""
    page = ("text/html", str)
    admin, ask = (400, 401, 403, 409, 429), (400, 413, 429, 503)  # the error statuses of these kinds
    return [
        Op("post", "/api/ask", "ask", "answers", "Answer a question from the documents, with citations",
           m.Answer, ask, m.ask_request(limits), m.AskEvent, description=m.AskEvent.__doc__),
        Op("get", "/api/documents", "listDocuments", "documents",
           "Every indexed document with its metadata, in path order", m.DocumentList, (429, 503)),
        Op("post", "/api/documents", "uploadDocuments", "documents",
           "Add documents, then update the index in the background", m.UploadResult, (*admin, 413, 415),
           m.Upload, status=202, description=m.Upload.__doc__, admin=True, body_type="multipart/form-data"),
        Op("get", "/api/documents/{doc_id}", "getDocument", "documents",
           "One document with its full text and its passages' offsets", m.Document, (404, 429, 503)),
        Op("delete", "/api/documents/{doc_id}", "deleteDocument", "documents",
           "Remove a document's file, then update the index in the background", m.DeleteResult,
           (400, 401, 403, 404, 429), status=202, admin=True),
        Op("get", "/api/index", "indexStatus", "documents", "What the index holds and whether it is stale",
           m.IndexStatus, (429,)),
        Op("post", "/api/index/rebuild", "rebuildIndex", "documents",
           "Start a background rebuild (incremental unless `full`)", m.JobAccepted, admin, m.RebuildRequest,
           status=202, description=m.RebuildRequest.__doc__, admin=True, body_required=False),
        Op("post", "/v1/chat/completions", "chatCompletions", "openai",
           "OpenAI-compatible chat completion (plain or streamed)", m.ChatCompletion, ask,
           m.ChatCompletionRequest, m.ChatEvent, description=m.ChatCompletionRequest.__doc__),
        Op("get", "/v1/models", "listModels", "openai", "The models served (only `iss-qa`)", m.ModelList,
           (429,)),
        Op("get", "/v1/models/{model_id}", "getModel", "openai", "One model by id", m.Model, (404, 429)),
        Op("get", "/healthz", "healthz", "operations", "Liveness: the process serves HTTP", m.Health),
        Op("get", "/readyz", "readyz", "operations",
           "Readiness: a current index is loaded and a probe question is answered", m.Ready, (503,)),
        Op("get", "/metrics", "metrics", "operations", "Prometheus metrics", ("text/plain", str),
           description=METRICS),
        Op("get", "/openapi.json", "openapi", "operations", "This document", (JSON, dict[str, Any])),
        Op("get", "/docs", "docs", "operations", "This document as a readable page (works offline)", page),
        Op("get", "/", "chatPage", "page", "The chat page", page),
        Op("get", "/static/{filename}", "staticFile", "page", "The pages' scripts, styles and icons",
           ("*/*", Any), (404,)),
    ]  # fmt: skip


def _version() -> str:
    try:
        return version("iss-qa")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _operation(op: Op, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    media, schema = (JSON, refs[op.ok]) if isinstance(op.ok, type) else (op.ok[0], _plain(op.ok[1]))
    ok = {media: {"schema": schema}} | ({EVENT_STREAM: {"schema": refs[op.stream]}} if op.stream else {})
    described = op.ok.__doc__.split("\n")[0] if isinstance(op.ok, type) and op.ok.__doc__ else op.summary
    spec: dict[str, Any] = {
        "tags": [op.tag],
        "operationId": op.id,
        "summary": op.summary,
        **({"description": inspect.cleandoc(op.description)} if op.description else {}),
        **({"security": [{"bearer": []}]} if op.admin else {}),
        "responses": {
            str(op.status): {"description": described, "content": ok},
            **{str(s): {"$ref": f"#/components/responses/E{s}"} for s in (*op.errors, 500)},
        },
    }
    if names := re.findall(r"{(\w+)}", op.path):
        spec["parameters"] = [
            {"name": n, "in": "path", "required": True, "schema": _plain(str)} for n in names
        ]
    if op.body:
        spec["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_type: {"schema": refs[op.body]}},
        }
    return spec


def _plain(kind: Any) -> dict[str, Any]:
    return TypeAdapter(kind).json_schema()


def build_spec(config: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for an app with this configuration."""
    ops = operations(m.Limits.of(config))
    used = {m.Error} | {
        model for op in ops for model in (op.ok, op.body, op.stream) if isinstance(model, type)
    }
    refs, schemas = m.json_schemas(used, "#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    retry = {"Retry-After": {"schema": _plain(NonNegativeInt), "required": True}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "iss-qa",
            "version": _version(),
            "description": "Cited answers to questions over a folder of news articles. Every answer quotes "
            "the documents word for word, and every sentence carries a `[n]` marker that resolves to a "
            'citation. Every error is `{"error": {"code", "message"}}` with a 4xx or 5xx status. '
            "Every response carries an `X-Request-ID` header (a client's own sane `X-Request-ID` is kept).",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's `ISSQA_ADMIN_TOKEN`; without one the writing endpoints answer 403.",
                }
            },
            "schemas": schemas,
            "responses": {
                f"E{status}": {
                    "description": text,
                    "content": {JSON: {"schema": refs[m.Error]}},
                    **({"headers": retry} if status == 429 else {}),
                }
                for status, text in ERROR_CODES.items()
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document, built from this app's configuration."""
    return jsonify(build_spec(current_app.config))


@bp.get("/docs")
def docs() -> Response:
    """A readable page of the API, rendered in the browser from `/openapi.json` by a local script."""
    return Response(render_template("docs.html"), content_type="text/html; charset=utf-8")
