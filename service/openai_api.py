"""OpenAI-compatible endpoints (`/v1/chat/completions`, `/v1/models`), so existing clients and chat front ends work.

The last user message is the question and the earlier user and assistant messages are the history;
the answer is the same extractive, cited answer as `/api/ask`. Citations travel twice: as numbered
sources at the end of the message content (what any front end shows) and as the structured `issqa`
field (what a client that knows iss-qa reads).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from . import sse
from .answer import Answer
from .api import check_question, check_top_k, engine, history_limits, json_object
from .errors import BadRequest, NotFound
from .observability import record_answer

bp = Blueprint("openai", __name__, url_prefix="/v1")

MODEL_ID = "iss-qa"
# What separates the answer from its list of sources in the message content; removed again from
# assistant messages sent back as history, so the sources never count as conversation.
SOURCES_HEADING = "\n\nSources:\n"
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
HISTORY_ROLES = {"user", "assistant"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


@bp.before_request
def chat_body_limit() -> None:
    """Allow larger bodies here than on `/api`: chat front ends resend the whole conversation each time."""
    # Flask before 3.1 has no per-request limit; there the app-wide one applies.
    with contextlib.suppress(AttributeError):
        request.max_content_length = int(current_app.config["MAX_CHAT_BODY_BYTES"])


@bp.get("/models")
def list_models() -> Any:
    """The one model iss-qa serves, in OpenAI's list format."""
    return jsonify({"object": "list", "data": [_model()]})


@bp.get("/models/<model_id>")
def get_model(model_id: str) -> Any:
    """One model by id; only `iss-qa` exists."""
    if model_id != MODEL_ID:
        raise NotFound(f"No model {model_id!r}; this server has only {MODEL_ID!r}.", code="model_not_found")
    return jsonify(_model())


def _model() -> dict[str, Any]:
    created = current_app.extensions.setdefault("issqa.created", int(time.time()))
    return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "iss-qa"}


@bp.post("/chat/completions")
def chat_completions() -> Any:
    """Answer the last user message, with the earlier messages as history; plain or streamed (SSE)."""
    body = json_object()
    model = body.get("model", MODEL_ID)
    if not isinstance(model, str) or not model:
        raise BadRequest("The field 'model' must be a non-empty string.", code="invalid_model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("The field 'stream' must be true or false.", code="invalid_stream")
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or n != 1):
        raise BadRequest("Only one choice is produced; 'n' must be 1.", code="invalid_n")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("The field 'stream_options' must be an object.", code="invalid_stream_options")
    top_k = check_top_k(body.get("top_k"))
    question, history = _conversation(body.get("messages"))

    answer = engine().ask(question, top_k, history)
    record_answer(answer.answered)
    completion = Completion(answer, model, prompt=question + " ".join(t["content"] for t in history))
    if stream:
        events = completion.chunks(include_usage=bool(options.get("include_usage")))
        return Response(events, content_type=sse.CONTENT_TYPE, headers=sse.HEADERS)
    return jsonify(completion.whole())


def _conversation(messages: Any) -> tuple[str, list[dict[str, str]]]:
    """The question (the last message, which must be the user's) and the history before it."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "The field 'messages' must be a non-empty list of messages.", code="invalid_messages"
        )
    texts = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(
                f"messages[{i}] must be an object with a 'role' ({', '.join(sorted(ROLES))}) and 'content'.",
                code="invalid_messages",
            )
        texts.append(_text(message.get("content"), i))
    if messages[-1]["role"] != "user":
        raise BadRequest("The last message must be the user's question.", code="invalid_messages")
    question = check_question(texts[-1], current_app.extensions["issqa"].settings.max_question_chars)
    history = []
    for message, text in zip(messages[:-1], texts[:-1], strict=True):
        said = _without_sources(text).strip()
        if message["role"] in HISTORY_ROLES and said:
            history.append({"role": message["role"], "content": said})
    return question, _recent(history)


def _text(content: Any, i: int) -> str:
    """A message's text: a string, null, or a list of parts of which only text parts are accepted."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise BadRequest(
                    f"messages[{i}].content may only hold text parts ({{'type': 'text', 'text': ...}}).",
                    code="unsupported_content",
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise BadRequest(
        f"messages[{i}].content must be a string or a list of text parts.", code="invalid_messages"
    )


def _without_sources(text: str) -> str:
    """An assistant message as iss-qa wrote it, less the list of sources appended to it."""
    return text.split(SOURCES_HEADING, 1)[0]


def _recent(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The most recent turns within the history limits: front ends resend whole conversations, which grow."""
    max_turns, max_chars = history_limits()
    kept: list[dict[str, str]] = []
    chars = 0
    for turn in reversed(history[-max_turns:] if max_turns > 0 else []):
        chars += len(turn["content"])
        if chars > max_chars:
            break
        kept.append(turn)
    return kept[::-1]


def sources(answer: Answer) -> str:
    """The numbered sources as a Markdown list: readable raw and rendered by chat front ends."""
    lines = []
    for c in answer.citations:
        about = ", ".join(x for x in (c.source, c.published) if x)
        where = c.url or f"{c.path}, characters {c.start}-{c.end}"
        lines.append(f"- [{c.n}] {c.title}" + (f" ({about})" if about else "") + f" — {where}")
    return SOURCES_HEADING + "\n".join(lines) if lines else ""


def _count(text: str) -> int:
    """A rough token count (words and punctuation): iss-qa runs no language model, so nothing is billed."""
    return len(_TOKEN.findall(text))


class Completion:
    """One answer shaped as an OpenAI chat completion, whole or as `chat.completion.chunk` events."""

    def __init__(self, answer: Answer, model: str, prompt: str) -> None:
        self.answer = answer
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.content = answer.answer + sources(answer)
        self.usage = {"prompt_tokens": _count(prompt), "completion_tokens": _count(self.content)}
        self.usage["total_tokens"] = self.usage["prompt_tokens"] + self.usage["completion_tokens"]
        d = answer.to_dict()
        self.extra = {"answered": d["answered"], "took_ms": d["took_ms"], "citations": d["citations"]}

    def whole(self) -> dict[str, Any]:
        """The `chat.completion` object."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self.usage,
            "issqa": self.extra,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            **extra,
        }
        return sse.event(chunk)

    def chunks(self, include_usage: bool = False) -> Iterator[str]:
        """The stream: the role (with the citations), word-sized content deltas, the stop, then `[DONE]`."""
        yield self._chunk({"role": "assistant", "content": ""}, issqa=self.extra)
        for piece in sse.pieces(self.content):
            yield self._chunk({"content": piece})
        yield self._chunk({}, "stop")
        if include_usage:
            yield sse.event(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": self.usage,
                }
            )
        yield sse.event("[DONE]")
