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
from typing import Any, Literal

from flask import Blueprint, Response, current_app, jsonify, request

from . import sse
from .answer import Answer
from .api import engine, json_object, limits
from .errors import BadRequest, NotFound
from .models import (
    MODEL_ID,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    CompletionMessage,
    Delta,
    IssqaExtra,
    Model,
    ModelList,
    Usage,
    answer_body,
    ask_request,
    parse,
    subset,
)
from .observability import record_answer

bp = Blueprint("openai", __name__, url_prefix="/v1")

# What separates the answer from its list of sources in the message content; removed again from
# assistant messages sent back as history, so the sources never count as conversation.
SOURCES_HEADING = "\n\nSources:\n"
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
    return jsonify(ModelList(data=[_model()]).model_dump())


@bp.get("/models/<model_id>")
def get_model(model_id: str) -> Any:
    """One model by id; only `iss-qa` exists."""
    if model_id != MODEL_ID:
        raise NotFound(f"No model {model_id!r}; this server has only {MODEL_ID!r}.", code="model_not_found")
    return jsonify(_model().model_dump())


def _model() -> Model:
    created = current_app.extensions.setdefault("issqa.created", int(time.time()))
    return Model(id=MODEL_ID, created=created, owned_by="iss-qa")


@bp.post("/chat/completions")
def chat_completions() -> Any:
    """Answer the last user message, with the earlier messages as history; plain or streamed (SSE)."""
    chat = parse(ChatCompletionRequest, json_object())
    if chat.messages[-1].role != "user":
        raise BadRequest("The last message must be the user's question.", code="invalid_messages")
    history = [
        {"role": m.role, "content": said}
        for m in chat.messages[:-1]
        if m.role in HISTORY_ROLES and (said := _without_sources(m.text()).strip())
    ]
    # The question goes through the same model as /api/ask's, with the most recent history that fits.
    bounds = limits()
    ask = parse(
        ask_request(bounds),
        {
            "question": chat.messages[-1].text(),
            "history": _recent(history, bounds.history_turns, bounds.history_chars),
        },
    )
    answer = engine().ask(ask.question, chat.top_k, [turn.model_dump() for turn in ask.history])
    record_answer(answer.answered)
    prompt = ask.question + " ".join(turn.content for turn in ask.history)
    completion = Completion(answer, chat.model, prompt)
    if chat.stream:
        include_usage = chat.stream_options is not None and chat.stream_options.include_usage
        return Response(completion.chunks(include_usage), content_type=sse.CONTENT_TYPE, headers=sse.HEADERS)
    return jsonify(completion.whole())


def _without_sources(text: str) -> str:
    """An assistant message as iss-qa wrote it, less the list of sources appended to it."""
    return text.split(SOURCES_HEADING, 1)[0]


def _recent(history: list[dict[str, str]], max_turns: int, max_chars: int) -> list[dict[str, str]]:
    """The most recent turns within the history limits: front ends resend whole conversations, which grow."""
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
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.content = answer.answer + sources(answer)
        prompt_tokens, completion_tokens = _count(prompt), _count(self.content)
        self.usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        self.extra = subset(IssqaExtra, answer_body(answer))

    def whole(self) -> dict[str, Any]:
        """The `chat.completion` object."""
        choice = CompletionChoice(message=CompletionMessage(content=self.content))
        completion = ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[choice],
            usage=self.usage,
            issqa=self.extra,
        )
        return completion.model_dump(mode="json")

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> str:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, **extra
        )
        return sse.event(chunk.model_dump(mode="json"))

    def chunks(self, include_usage: bool = False) -> Iterator[str]:
        """The stream: the role (with the citations), word-sized content deltas, the stop, then `[DONE]`."""
        yield self._chunk([_choice(Delta(role="assistant", content=""))], issqa=self.extra)
        for piece in sse.pieces(self.content):
            yield self._chunk([_choice(Delta(content=piece))])
        yield self._chunk([_choice(Delta(), "stop")])
        if include_usage:
            yield self._chunk([], usage=self.usage)
        yield sse.event("[DONE]")


def _choice(delta: Delta, finish: Literal["stop"] | None = None) -> ChunkChoice:
    return ChunkChoice(index=0, delta=delta, finish_reason=finish, logprobs=None)
