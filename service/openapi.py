"""The OpenAPI 3.1 description of every route (`GET /openapi.json`) and a readable page for it (`GET /docs`).

The document is built from the app's configuration, so its limits (question length, history size,
body size) are the ones actually enforced; tests check that it names every route the app has and
that live responses match it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from .api import HTTP_CODES, ROLES, TOP_K_RANGE
from .openai_api import MODEL_ID
from .openai_api import ROLES as CHAT_ROLES

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
ASK_EVENTS = """\
With `Accept: text/event-stream` the answer comes as server-sent events, in this order:

- `citations`: `{"question", "answered", "citations"}`, the sources, before any text;
- `delta` (one or more): `{"text": "..."}`, word-sized pieces; joined, they are exactly `answer`;
- `done`: the complete response body, the same object as the JSON response.

Errors are never streamed: a bad request gets its JSON error and status before any event."""
CHAT_DESCRIPTION = f"""\
OpenAI-compatible chat completion: the last message (which must be the user's) is the question; earlier
`user` and `assistant` messages are the history (the most recent ones within the history limits; `system`
and `developer` messages are accepted and ignored). Any `model` name is accepted and echoed; the one model
is `{MODEL_ID}`. Sampling parameters (`temperature`, `max_tokens`, ...) are accepted and ignored: answers are
quoted from the documents, never generated.

The message content is the answer followed by its numbered sources (a blank line, `Sources:` and one
`- [n] ...` line per source). The same sources, with passages and offsets, are in the extra field `issqa`
(`answered`, `took_ms`, `citations`).

With `"stream": true` the response is `text/event-stream` of `chat.completion.chunk` objects as `data:` lines:
the first carries `delta.role` and the `issqa` field, then word-sized `delta.content` pieces, then one with
`finish_reason: "stop"`, then (with `stream_options.include_usage`) a usage chunk with no choices, and last
`data: [DONE]`. `usage` counts words and punctuation, not model tokens: no language model runs."""


def _version() -> str:
    try:
        return version("iss-qa")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in (*statuses, 500)}


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A server-sent event named `name` whose `data` line is JSON matching `data`."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": data},
        },
    }


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _schemas(config: Any) -> dict[str, Any]:
    low, high = TOP_K_RANGE
    question = {
        "type": "string",
        "minLength": 1,
        "maxLength": int(config["MAX_QUESTION_CHARS"]),
        "description": "The question; surrounding whitespace is removed before the length is checked.",
    }
    top_k = {
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "description": f"How many passages to cite (default {config['TOP_K']}).",
    }
    citation_fields = {
        "n": {"type": "integer", "minimum": 1, "description": "The number used by `[n]` markers."},
        "document_id": {"type": "string"},
        "path": {"type": "string", "description": "The file, relative to the documents folder."},
        "title": {"type": "string"},
        "published": _nullable("string"),
        "source": _nullable("string"),
        "url": _nullable("string"),
        "passage": {"type": "string", "description": "Exactly the document's text from `start` to `end`."},
        "start": {"type": "integer", "minimum": 0},
        "end": {"type": "integer", "minimum": 0},
        "page": {
            **_nullable("integer"),
            "description": "The page the passage starts on (PDF documents), else null.",
        },
        "score": {"type": "number", "description": "Cosine similarity between question and passage."},
    }
    summary_fields = {
        "id": {"type": "string"},
        "path": {"type": "string"},
        "title": {"type": "string"},
        "published": _nullable("string"),
        "source": _nullable("string"),
        "url": _nullable("string"),
        "passages": {"type": "integer", "minimum": 0},
        "size": {"type": "integer", "minimum": 0, "description": "UTF-8 bytes of the searchable text."},
    }
    text_part = {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "examples": sorted(set(HTTP_CODES.values()))},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Turn": {
            "type": "object",
            "required": ["role", "content"],
            "additionalProperties": False,
            "properties": {"role": {"enum": sorted(ROLES)}, "content": {"type": "string"}},
        },
        "AskRequest": {
            "type": "object",
            "required": ["question"],
            "additionalProperties": False,
            "properties": {
                "question": question,
                "top_k": top_k,
                "history": {
                    "type": "array",
                    "maxItems": int(config["MAX_HISTORY_TURNS"]),
                    "items": _ref("Turn"),
                    "description": "The conversation so far, oldest first; at most "
                    f"{config['MAX_HISTORY_TURNS']} entries and {config['MAX_HISTORY_CHARS']} characters in all.",
                },
            },
        },
        "Citation": {
            "type": "object",
            "required": list(citation_fields),
            "additionalProperties": False,
            "properties": citation_fields,
        },
        "Answer": {
            "type": "object",
            "required": ["question", "answer", "answered", "took_ms", "citations"],
            "additionalProperties": False,
            "properties": {
                "question": {"type": "string"},
                "answer": {"type": "string", "description": "Quoted sentences, each followed by `[n]`."},
                "answered": {"type": "boolean", "description": "False when the documents do not say."},
                "took_ms": {"type": "number"},
                "citations": {"type": "array", "items": _ref("Citation")},
            },
        },
        "DocumentSummary": {
            "type": "object",
            "required": list(summary_fields),
            "additionalProperties": False,
            "properties": summary_fields,
        },
        "DocumentList": {
            "type": "object",
            "required": ["documents"],
            "additionalProperties": False,
            "properties": {"documents": {"type": "array", "items": _ref("DocumentSummary")}},
        },
        "Document": {
            "type": "object",
            "required": [*summary_fields, "text", "passage_offsets"],
            "additionalProperties": False,
            "properties": {
                **summary_fields,
                "text": {"type": "string", "description": "The searchable body (front matter excluded)."},
                "passage_offsets": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                },
            },
        },
        "IndexStatus": {
            "type": "object",
            "required": [
                "documents_dir",
                "index_dir",
                "model",
                "built",
                "built_at",
                "documents",
                "passages",
                "skipped",
                "stale",
                "job",
            ],
            "additionalProperties": False,
            "properties": {
                "documents_dir": {"type": "string"},
                "index_dir": {"type": "string"},
                "model": {"type": "string"},
                "built": {"type": "boolean"},
                "built_at": _nullable("string"),
                "documents": {"type": "integer", "minimum": 0},
                "passages": {"type": "integer", "minimum": 0},
                "skipped": {
                    "type": "object",
                    "additionalProperties": {"type": "object"},
                    "description": "Files that could not be indexed, by path, with the reason.",
                },
                "stale": {
                    **_nullable("string"),
                    "description": "Why the index is behind the documents (it still answers), or null.",
                },
                "job": {
                    "oneOf": [_ref("Job"), {"type": "null"}],
                    "description": "The latest background rebuild, running or finished, or null.",
                },
            },
        },
        "Job": {
            "type": "object",
            "required": ["id", "full", "state", "started_at", "finished_at", "phase", "embedded", "to_embed"],
            "properties": {
                "id": {"type": "string"},
                "full": {"type": "boolean"},
                "state": {"enum": ["running", "succeeded", "failed", "interrupted"]},
                "started_at": {"type": "string"},
                "finished_at": _nullable("string"),
                "phase": {"enum": ["reading", "embedding", "writing", "done"]},
                "embedded": {"type": "integer", "minimum": 0, "description": "Passages embedded so far."},
                "to_embed": {"type": "integer", "minimum": 0, "description": "Passages this pass embeds."},
                "passes": {"type": "integer", "minimum": 0},
                "summary": {
                    **_nullable("object"),
                    "description": "When finished: documents added, changed, removed, unchanged and skipped.",
                },
                "error": _nullable("string"),
            },
        },
        "JobAccepted": {
            "type": "object",
            "required": ["job"],
            "properties": {"job": {"oneOf": [_ref("Job"), {"type": "null"}]}},
        },
        "RebuildRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "full": {"type": "boolean", "description": "Re-embed everything (default false)."}
            },
        },
        "Upload": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "type": "array",
                    "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                    "description": "One or more .txt, .md, .html or .pdf files.",
                },
                "title": {"type": "string"},
                "published": {"type": "string", "description": "YYYY-MM-DD"},
                "source": {"type": "string"},
                "url": {"type": "string"},
                "overwrite": {"type": "string", "enum": ["true", "false"]},
            },
        },
        "UploadResult": {
            "type": "object",
            "required": ["saved", "rejected", "job"],
            "properties": {
                "saved": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "path"],
                        "properties": {"id": {"type": "string"}, "path": {"type": "string"}},
                    },
                },
                "rejected": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["filename", "error"],
                        "properties": {
                            "filename": {"type": "string"},
                            "error": {
                                "type": "object",
                                "required": ["code", "message"],
                                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                            },
                        },
                    },
                },
                "job": {"oneOf": [_ref("Job"), {"type": "null"}]},
            },
        },
        "DeleteResult": {
            "type": "object",
            "required": ["deleted", "job"],
            "properties": {
                "deleted": {
                    "type": "object",
                    "required": ["id", "path"],
                    "properties": {"id": {"type": "string"}, "path": {"type": "string"}},
                },
                "job": {"oneOf": [_ref("Job"), {"type": "null"}]},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Ready": {
            "type": "object",
            "required": ["status", "documents", "passages"],
            "properties": {
                "status": {"const": "ready"},
                "documents": {"type": "integer", "minimum": 0},
                "passages": {"type": "integer", "minimum": 0},
            },
        },
        "ChatMessage": {
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": {"enum": sorted(CHAT_ROLES)},
                "content": {
                    "anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": text_part}]
                },
            },
        },
        "ChatCompletionRequest": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "model": {"type": "string", "minLength": 1, "examples": [MODEL_ID]},
                "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
                "stream": {"type": "boolean", "default": False},
                "stream_options": {
                    "type": ["object", "null"],
                    "properties": {"include_usage": {"type": "boolean"}},
                },
                "n": {"type": ["integer", "null"], "const": 1},
                "top_k": top_k,
            },
            "description": "Other OpenAI parameters are accepted and ignored.",
        },
        "Usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {
                "prompt_tokens": {"type": "integer", "minimum": 0},
                "completion_tokens": {"type": "integer", "minimum": 0},
                "total_tokens": {"type": "integer", "minimum": 0},
            },
        },
        "IssqaExtra": {
            "type": "object",
            "required": ["answered", "took_ms", "citations"],
            "properties": {
                "answered": {"type": "boolean"},
                "took_ms": {"type": "number"},
                "citations": {"type": "array", "items": _ref("Citation")},
            },
        },
        "ChatCompletion": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices", "usage", "issqa"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "chat.completion"},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["index", "message", "finish_reason"],
                        "properties": {
                            "index": {"const": 0},
                            "message": {
                                "type": "object",
                                "required": ["role", "content"],
                                "properties": {
                                    "role": {"const": "assistant"},
                                    "content": {"type": "string"},
                                    "refusal": {"type": "null"},
                                },
                            },
                            "finish_reason": {"const": "stop"},
                            "logprobs": {"type": "null"},
                        },
                    },
                },
                "usage": _ref("Usage"),
                "issqa": _ref("IssqaExtra"),
            },
        },
        "AskEvent": {
            "description": "One server-sent event of `POST /api/ask` with `Accept: text/event-stream`; "
            "`data` is JSON.",
            "oneOf": [
                _event("citations", _ref("AskCitations")),
                _event("delta", _ref("AskDelta")),
                _event("done", _ref("Answer")),
            ],
        },
        "AskCitations": {
            "type": "object",
            "required": ["question", "answered", "citations"],
            "additionalProperties": False,
            "properties": {
                "question": {"type": "string"},
                "answered": {"type": "boolean"},
                "citations": {"type": "array", "items": _ref("Citation")},
            },
        },
        "AskDelta": {
            "type": "object",
            "required": ["text"],
            "additionalProperties": False,
            "properties": {"text": {"type": "string", "minLength": 1}},
        },
        "ChatEvent": {
            "description": "One server-sent event of a streamed chat completion: a JSON "
            "`chat.completion.chunk`, or the final `[DONE]`.",
            "type": "object",
            "required": ["data"],
            "properties": {
                "event": {"const": "message"},
                "data": {
                    "anyOf": [
                        {"const": "[DONE]"},
                        {
                            "type": "string",
                            "pattern": "^\\{",
                            "contentMediaType": JSON,
                            "contentSchema": _ref("ChatCompletionChunk"),
                        },
                    ]
                },
            },
        },
        "ChatCompletionChunk": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "chat.completion.chunk"},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {
                    "type": "array",
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["index", "delta", "finish_reason"],
                        "properties": {
                            "index": {"const": 0},
                            "delta": {
                                "type": "object",
                                "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
                                "additionalProperties": False,
                            },
                            "finish_reason": {"enum": [None, "stop"]},
                            "logprobs": {"type": "null"},
                        },
                    },
                },
                "usage": _ref("Usage"),
                "issqa": _ref("IssqaExtra"),
            },
        },
        "Model": {
            "type": "object",
            "required": ["id", "object", "created", "owned_by"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "model"},
                "created": {"type": "integer"},
                "owned_by": {"type": "string"},
            },
        },
        "ModelList": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
        },
    }


def build_spec(config: Any) -> dict[str, Any]:
    """The OpenAPI 3.1 document for an app with this configuration."""
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
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
        "tags": [
            {"name": "answers", "description": "Questions and answers."},
            {"name": "documents", "description": "What is indexed."},
            {"name": "openai", "description": "OpenAI-compatible endpoints for existing clients."},
            {"name": "operations", "description": "Health, readiness, metrics and this description."},
            {"name": "page", "description": "The chat page and its files."},
        ],
        "paths": {
            "/api/ask": {
                "post": {
                    "tags": ["answers"],
                    "operationId": "ask",
                    "summary": "Answer a question from the documents, with citations",
                    "description": ASK_EVENTS,
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("AskRequest")}}},
                    "responses": {
                        "200": {
                            "description": "The answer, as JSON or (with `Accept: text/event-stream`) as events.",
                            "content": {
                                JSON: {"schema": _ref("Answer")},
                                EVENT_STREAM: {"schema": _ref("AskEvent")},
                            },
                        },
                        **_errors(400, 413, 429, 503),
                    },
                }
            },
            "/api/documents": {
                "get": {
                    "tags": ["documents"],
                    "operationId": "listDocuments",
                    "summary": "Every indexed document with its metadata, in path order",
                    "responses": {"200": _json(_ref("DocumentList"), "The documents."), **_errors(429, 503)},
                },
                "post": {
                    "tags": ["documents"],
                    "operationId": "uploadDocuments",
                    "summary": "Add documents, then update the index in the background",
                    "description": "Each file is checked on its own (name, size, type by content, that it "
                    "parses): good files are saved even when another is refused, and `rejected` says why. "
                    "Saving never overwrites a document unless `overwrite=true`. The index is then updated "
                    "incrementally; follow the job at `GET /api/index`.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": _ref("Upload")}},
                    },
                    "responses": {
                        "202": _json(_ref("UploadResult"), "Saved; the index is being updated."),
                        **_errors(400, 401, 403, 409, 413, 415, 429),
                    },
                },
            },
            "/api/documents/{doc_id}": {
                "get": {
                    "tags": ["documents"],
                    "operationId": "getDocument",
                    "summary": "One document with its full text and its passages' offsets",
                    "parameters": [
                        {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _json(_ref("Document"), "The document."), **_errors(404, 429, 503)},
                },
                "delete": {
                    "tags": ["documents"],
                    "operationId": "deleteDocument",
                    "summary": "Remove a document's file, then update the index in the background",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "202": _json(_ref("DeleteResult"), "Removed; the index is being updated."),
                        **_errors(400, 401, 403, 404, 429),
                    },
                },
            },
            "/api/index": {
                "get": {
                    "tags": ["documents"],
                    "operationId": "indexStatus",
                    "summary": "What the index holds and whether it is stale",
                    "responses": {"200": _json(_ref("IndexStatus"), "The index's state."), **_errors(429)},
                }
            },
            "/api/index/rebuild": {
                "post": {
                    "tags": ["documents"],
                    "operationId": "rebuildIndex",
                    "summary": "Start a background rebuild (incremental unless `full`)",
                    "description": "Questions keep being answered from the current index while it runs, and "
                    "the new index is served as soon as it is written. One rebuild at a time: a second "
                    "request gets 409.",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": False, "content": {JSON: {"schema": _ref("RebuildRequest")}}},
                    "responses": {
                        "202": _json(_ref("JobAccepted"), "Started; follow it at `GET /api/index`."),
                        **_errors(400, 401, 403, 409, 429),
                    },
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "tags": ["openai"],
                    "operationId": "chatCompletions",
                    "summary": "OpenAI-compatible chat completion (plain or streamed)",
                    "description": CHAT_DESCRIPTION,
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": _ref("ChatCompletionRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": "A `chat.completion`, or with `stream: true` a stream of chunks.",
                            "content": {
                                JSON: {"schema": _ref("ChatCompletion")},
                                EVENT_STREAM: {"schema": _ref("ChatEvent")},
                            },
                        },
                        **_errors(400, 413, 429, 503),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "tags": ["openai"],
                    "operationId": "listModels",
                    "summary": "The models served (only `iss-qa`)",
                    "responses": {"200": _json(_ref("ModelList"), "The models."), **_errors(429)},
                }
            },
            "/v1/models/{model_id}": {
                "get": {
                    "tags": ["openai"],
                    "operationId": "getModel",
                    "summary": "One model by id",
                    "parameters": [
                        {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _json(_ref("Model"), "The model."), **_errors(404, 429)},
                }
            },
            "/healthz": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "healthz",
                    "summary": "Liveness: the process serves HTTP",
                    "responses": {"200": _json(_ref("Health"), "Alive."), **_errors()},
                }
            },
            "/readyz": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "readyz",
                    "summary": "Readiness: a current index is loaded and a probe question is answered",
                    "responses": {"200": _json(_ref("Ready"), "Ready to answer."), **_errors(503)},
                }
            },
            "/metrics": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "description": "Requests by route, method and status (`issqa_http_requests_total`), "
                    "latency histograms (`issqa_http_request_duration_seconds`), answers and refusals "
                    "(`issqa_answers_total`), documents and passages indexed (`issqa_index_documents`, "
                    "`issqa_index_passages`), index builds (`issqa_index_rebuilds_total`) and when the "
                    "index was built (`issqa_index_built_timestamp_seconds`).",
                    "responses": {
                        "200": {
                            "description": "The Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document."), **_errors()},
                }
            },
            "/docs": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "docs",
                    "summary": "This document as a readable page (works offline)",
                    "responses": {"200": {"description": "The page.", **html}, **_errors()},
                }
            },
            "/": {
                "get": {
                    "tags": ["page"],
                    "operationId": "chatPage",
                    "summary": "The chat page",
                    "responses": {"200": {"description": "The page.", **html}, **_errors()},
                }
            },
            "/static/{filename}": {
                "get": {
                    "tags": ["page"],
                    "operationId": "staticFile",
                    "summary": "The pages' scripts, styles and icons",
                    "parameters": [
                        {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "The file.", "content": {"*/*": {"schema": {}}}},
                        **_errors(404),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's `ISSQA_ADMIN_TOKEN`; without one the writing endpoints answer 403.",
                }
            },
            "schemas": _schemas(config),
            "responses": {
                f"E{status}": {
                    "description": text,
                    "content": {JSON: {"schema": _ref("Error")}},
                    **(
                        {
                            "headers": {
                                "Retry-After": {"schema": {"type": "integer", "minimum": 0}, "required": True}
                            }
                        }
                        if status == 429
                        else {}
                    ),
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
