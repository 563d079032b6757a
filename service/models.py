"""The HTTP contract as Pydantic models: every request body, every response body and the error body.

One set of models does three jobs, so they cannot disagree: requests are validated by them (`parse`),
responses are built from them, and `/openapi.json` is generated from them (service/openapi.py). The
answer's models are derived from the `Answer` and `Citation` dataclasses, so a field added there is
sent by `/api/ask`, its events, the `issqa` field of chat completions and `issqa ask --json` alike.
Pydantic's error messages are not iss-qa's: `FIELD_ERRORS` turns them into our codes and messages.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Json,
    RootModel,
    StringConstraints,
    Tag,
    ValidationError,
    create_model,
)
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import ErrorDetails, PydanticCustomError

from . import answer, jobs
from .errors import HTTP_CODES, BadRequest, IssqaError

TOP_K_RANGE = (1, 20)
MODEL_ID = "iss-qa"
ChatRole = Literal["assistant", "developer", "function", "system", "tool", "user"]
CHAT_ROLES = get_args(ChatRole)
M = TypeVar("M", bound=BaseModel)


class RequestModel(BaseModel):
    """A request body: exact JSON types (no "5" for 5, no 1 for true) and no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_mode_override="validation")


class ResponseModel(BaseModel):
    """A response body: every field is always sent, and nothing else."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )


class EventModel(BaseModel):
    """A server-sent event: its name, and a `data` line holding JSON."""

    model_config = ConfigDict(extra="forbid", json_schema_mode_override="validation")


class OpenAIResponse(ResponseModel):
    """An object of OpenAI's protocol: OpenAI adds fields over time, so clients must not assume a closed set."""

    model_config = ConfigDict(extra="ignore")


@dataclasses.dataclass(frozen=True)
class Limits:
    """The configured limits on a question and its history; they are in the schema and enforced."""

    question_chars: int
    history_turns: int
    history_chars: int
    top_k: int  # the default, for the description

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Limits:
        keys = ("MAX_QUESTION_CHARS", "MAX_HISTORY_TURNS", "MAX_HISTORY_CHARS", "TOP_K")
        return cls(*(int(config[key]) for key in keys))


# ------------------------------------------------------------------ requests

TopK = Annotated[int, Field(ge=TOP_K_RANGE[0], le=TOP_K_RANGE[1])]
Question = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1)
]  # the length is checked stripped


class Turn(RequestModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


class AskRequest(RequestModel):
    """`POST /api/ask`. Validate with `ask_request(limits)`, which adds the server's limits."""

    question: Question
    top_k: TopK | None = None
    history: list[Turn] = []


def _entries_first(history: list[Turn]) -> list[Turn]:
    """Placed before the length limit so that a bad entry is reported before too many entries."""
    return history


@functools.cache
def ask_request(limits: Limits) -> type[AskRequest]:
    """`AskRequest` with these limits, so that the schema states exactly what is enforced."""

    def within(history: list[Turn]) -> list[Turn]:
        chars = sum(len(turn.content) for turn in history)
        if chars > limits.history_chars:
            raise PydanticCustomError(
                "history_too_long",
                f"The history holds {chars} characters; the limit is {limits.history_chars} "
                "(send the most recent turns).",
                {"own": True},
            )
        return history

    return create_model(
        "AskRequest",
        __base__=AskRequest,
        __doc__="`POST /api/ask`: a question, how many passages to cite and the conversation so far.",
        question=(
            Annotated[Question, Field(max_length=limits.question_chars)],
            Field(
                description="The question; surrounding whitespace is removed before the length is checked."
            ),
        ),
        top_k=(TopK | None, Field(None, description=f"How many passages to cite (default {limits.top_k}).")),
        history=(
            Annotated[
                list[Turn],
                AfterValidator(_entries_first),
                Field(max_length=limits.history_turns),
                AfterValidator(within),
            ],
            Field(
                [],
                description=f"The conversation so far, oldest first; at most {limits.history_turns} entries "
                f"and {limits.history_chars} characters in all.",
            ),
        ),
    )


class RebuildRequest(RequestModel):
    """`POST /api/index/rebuild` (the body is optional).

    Questions keep being answered from the current index while it runs, and the new index is served as
    soon as it is written. One rebuild at a time: a second request gets 409.
    """

    full: bool = Field(False, description="Re-embed everything (default false).")


class UploadForm(RequestModel):
    """The optional form fields of `POST /api/documents`; the metadata apply to a single file."""

    overwrite: str = Field("false", description="`true` replaces a document of the same name.")
    published: str = Field("", description="YYYY-MM-DD")
    source: str = ""
    title: str = ""
    url: str = ""


class Upload(UploadForm):
    """`POST /api/documents`, multipart: the files and the optional form fields.

    Each file is checked on its own (name, size, type by content, that it parses): good files are saved
    even when another is refused, and `rejected` says why. Saving never overwrites a document unless
    `overwrite=true`. The index is then updated incrementally; follow the job at `GET /api/index`.
    """

    file: list[Annotated[str, Field(json_schema_extra={"contentMediaType": "application/octet-stream"})]] = (
        Field(description="One or more .txt, .md, .html or .pdf files.")
    )


class TextPart(RequestModel):
    """A text part of a message's content; other kinds of part (images, audio) are refused."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


def _content_kind(content: Any) -> str | None:
    return {str: "text", list: "parts", type(None): "none"}.get(type(content))


class ChatMessage(RequestModel):
    """One message of a chat; fields other than `role` and `content` are ignored."""

    model_config = ConfigDict(extra="ignore")
    role: ChatRole
    content: Annotated[
        Annotated[str, Tag("text")] | Annotated[list[TextPart], Tag("parts")] | Annotated[None, Tag("none")],
        Discriminator(_content_kind),
    ] = None

    def text(self) -> str:
        """The message's text: its text parts joined by line breaks."""
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


def _falsy_is_absent(value: Any) -> Any:
    return value or None


class StreamOptions(BaseModel):
    """Options of a streamed chat completion."""

    include_usage: Annotated[bool, BeforeValidator(bool)] = False


class ChatCompletionRequest(RequestModel):
    """OpenAI-compatible chat completion: the last message (which must be the user's) is the question.

    Earlier `user` and `assistant` messages are the history (the most recent ones within the history
    limits; `system` and `developer` messages are accepted and ignored). Any `model` name is accepted
    and echoed; the one model is `iss-qa`. Other parameters (`temperature`, `max_tokens`, ...) are
    accepted and ignored: answers are quoted from the documents, never generated.

    The message content is the answer followed by its numbered sources (a blank line, `Sources:` and
    one `- [n] ...` line per source). The same sources, with passages and offsets, are in the extra
    field `issqa` (`IssqaExtra`: the answer's state and citations).

    With `"stream": true` the response is `text/event-stream` of `chat.completion.chunk` objects as
    `data:` lines: the first carries `delta.role` and the `issqa` field, then word-sized
    `delta.content` pieces, then one with `finish_reason: "stop"`, then (with
    `stream_options.include_usage`) a usage chunk with no choices, and last `data: [DONE]`. `usage`
    counts words and punctuation, not model tokens: no language model runs.
    """

    model_config = ConfigDict(extra="ignore")
    model: Annotated[str, StringConstraints(min_length=1)] = Field(MODEL_ID, examples=[MODEL_ID])
    stream: bool = False
    n: Literal[1] | None = 1
    stream_options: Annotated[StreamOptions | None, BeforeValidator(_falsy_is_absent)] = None
    top_k: TopK | None = None
    messages: list[ChatMessage] = Field(min_length=1)


# ------------------------------------------------------------------ responses

ABOUT = {  # descriptions of the fields of the models derived from dataclasses
    "n": "The number used by `[n]` markers.",
    "path": "The file, relative to the documents folder.",
    "passage": "Exactly the document's text from `start` to `end`.",
    "page": "The page the passage starts on (PDF documents), else null.",
    "score": "Cosine similarity between question and passage.",
    "read_as": (
        "The question as the documents spell its words, when it named something another way "
        '("Roscosmos" read as their "Roskosmos"); null when read as asked.'
    ),
    "answer": "Quoted sentences, each followed by `[n]`.",
    "answered": "False when the documents do not say.",
    "embedded": "Passages embedded so far.",
    "to_embed": "Passages this pass embeds.",
    "summary": "When finished: documents added, changed, removed, unchanged and skipped.",
}


def _derive(
    name: str, source: type, doc: str, exclude: tuple[str, ...] = (), **types: Any
) -> type[ResponseModel]:
    """A response model with the fields of the dataclass `source` (less `exclude`), in its order."""
    hints = get_type_hints(source)
    fields: dict[str, Any] = {
        f.name: (types.get(f.name, hints[f.name]), Field(description=ABOUT.get(f.name)))
        for f in dataclasses.fields(source)
        if f.name not in exclude
    }
    return create_model(name, __base__=ResponseModel, __doc__=doc, **fields)


Citation = _derive(
    "Citation",
    answer.Citation,
    "One numbered source of an answer: where the passage lives and what it says.",
    n=Annotated[int, Field(ge=1)],
    start=Annotated[int, Field(ge=0)],
    end=Annotated[int, Field(ge=0)],
)


def _answer_view(name: str, doc: str, *exclude: str) -> type[ResponseModel]:
    """A model of the `Answer` dataclass's fields, less `exclude`, its citations as `Citation`."""
    return _derive(name, answer.Answer, doc, exclude, citations=list[Citation])  # type: ignore[valid-type]


Answer = _answer_view(
    "Answer", "The answer: the body of `POST /api/ask`, of its `done` event and of `issqa ask --json`."
)
AskCitations = _answer_view(
    "AskCitations",
    "The `citations` event: everything but the answer's text, before the text.",
    "answer",
    "took_ms",
)
IssqaExtra = _answer_view(
    "IssqaExtra",
    "The answer's sources and state beside a chat completion (field `issqa`).",
    "question",
    "answer",
)
Job = _derive(
    "Job",
    jobs.Job,
    "A background rebuild, running or finished.",
    exclude=("pid",),
    state=Literal["running", "succeeded", "failed", "interrupted"],
    phase=Literal["reading", "embedding", "writing", "done"],
)


def answer_model(reply: answer.Answer) -> ResponseModel:
    """The response model of an answer."""
    return Answer.model_validate(reply, from_attributes=True)  # no deep copy, as `dataclasses.asdict` makes


def answer_body(reply: answer.Answer) -> dict[str, Any]:
    """The JSON body of an answer, as `/api/ask` sends it."""
    return answer_model(reply).model_dump(mode="json")


def subset(model: type[BaseModel], body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `model` taken from a body that has them all (an answer's events and extras)."""
    return {name: body[name] for name in model.model_fields}


class AskDelta(ResponseModel):
    """A `delta` event: the next word-sized piece of the answer."""

    text: str = Field(min_length=1)


class CitationsEvent(EventModel):
    event: Literal["citations"]
    data: Json[AskCitations]  # type: ignore[valid-type]


class DeltaEvent(EventModel):
    event: Literal["delta"]
    data: Json[AskDelta]


class DoneEvent(EventModel):
    event: Literal["done"]
    data: Json[Answer]  # type: ignore[valid-type]


class AskEvent(RootModel[Annotated[CitationsEvent | DeltaEvent | DoneEvent, Field(discriminator="event")]]):
    """With `Accept: text/event-stream` the answer comes as server-sent events, in this order:

    - `citations` (`AskCitations`): the answer but its text, so the sources show before any text;
    - `delta` (one or more): `{"text": "..."}`, word-sized pieces; joined, they are exactly `answer`;
    - `done`: the complete response body, the same object as the JSON response.

    Errors are never streamed: a bad request gets its JSON error and status before any event.
    """


class ErrorDetail(ResponseModel):
    code: str = Field(examples=sorted(set(HTTP_CODES.values())))
    message: str


class Error(ResponseModel):
    """Every error: a stable `code` for programs and a `message` for people."""

    error: ErrorDetail


def error_body(code: str, message: str) -> dict[str, Any]:
    return Error(error=ErrorDetail(code=code, message=message)).model_dump()


class DocumentSummary(ResponseModel):
    """An indexed document's metadata."""

    id: str
    path: str
    title: str
    published: str | None
    source: str | None
    url: str | None
    passages: int = Field(ge=0)
    size: int = Field(ge=0, description="UTF-8 bytes of the searchable text.")


class Document(DocumentSummary):
    """A document with its full searchable text and its passages' character offsets."""

    text: str = Field(description="The searchable body (front matter excluded).")
    passage_offsets: list[Annotated[list[int], Field(min_length=2, max_length=2)]]


class DocumentList(ResponseModel):
    documents: list[DocumentSummary]


class IndexStatus(ResponseModel):
    """What the index holds and whether it is behind the documents."""

    documents_dir: str
    index_dir: str
    model: str
    built: bool
    built_at: str | None
    documents: int = Field(ge=0)
    passages: int = Field(ge=0)
    skipped: dict[str, dict[str, Any]] = Field(
        description="Files that could not be indexed, with the reason."
    )
    stale: str | None = Field(
        description="Why the index is behind the documents (it still answers), or null."
    )
    job: Job | None = Field(  # type: ignore[valid-type]
        description="The latest background rebuild, running or finished, or null."
    )


class JobAccepted(ResponseModel):
    job: Job  # type: ignore[valid-type]


class Saved(ResponseModel):
    id: str | None
    path: str


class Rejected(ResponseModel):
    filename: str
    error: ErrorDetail


class UploadResult(ResponseModel):
    saved: list[Saved]
    rejected: list[Rejected]
    job: Job | None  # type: ignore[valid-type]


class DeleteResult(ResponseModel):
    deleted: Saved
    job: Job | None  # type: ignore[valid-type]


class Health(ResponseModel):
    status: Literal["ok"]


class Ready(ResponseModel):
    status: Literal["ready"]
    documents: int = Field(ge=0)
    passages: int = Field(ge=0)


# ------------------------------------------------------------------ OpenAI's protocol


class Usage(OpenAIResponse):
    """Words and punctuation, not model tokens: no language model runs."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class CompletionMessage(OpenAIResponse):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class CompletionChoice(OpenAIResponse):
    index: Literal[0] = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(OpenAIResponse):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice] = Field(min_length=1, max_length=1)
    usage: Usage
    issqa: IssqaExtra  # type: ignore[valid-type]


def _absent(value: Any) -> bool:
    return value is None


class Delta(OpenAIResponse):
    """What a chunk adds: the role (first chunk), a piece of the content, or nothing (the last)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)
    role: Literal["assistant"] | None = Field(None, exclude_if=_absent)
    content: str | None = Field(None, exclude_if=_absent)


class ChunkChoice(OpenAIResponse):
    index: Literal[0] = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(OpenAIResponse):
    """One streamed piece of a completion: the first carries `issqa`, the last (if asked for) `usage`."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice] = Field(max_length=1)
    usage: Usage | None = Field(None, exclude_if=_absent)
    issqa: IssqaExtra | None = Field(None, exclude_if=_absent)  # type: ignore[valid-type]


class ChatEvent(EventModel):
    """One server-sent event of a streamed chat completion: a `chat.completion.chunk`, or the final `[DONE]`."""

    model_config = ConfigDict(extra="ignore")
    event: Literal["message"] = "message"
    data: Literal["[DONE]"] | Annotated[Json[ChatCompletionChunk], Field(pattern="^\\{")]


class Model(OpenAIResponse):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(OpenAIResponse):
    object: Literal["list"] = "list"
    data: list[Model]


# ------------------------------------------------------------------ JSON Schema


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema, terser: no title on every property, `"type": [T, "null"]` for an optional T."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: Any) -> dict[str, Any]:
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str) and "const" not in inner and "enum" not in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return super().nullable_schema(schema)


def json_schemas(
    models: Iterable[type[BaseModel]], ref_template: str
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """A reference to each of `models` and the schemas of all they use, by name.

    Each model is rendered as what it is, a request or a response (`json_schema_mode_override`).
    """
    keyed, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda model: model.__name__)],
        ref_template=ref_template,
        schema_generator=_Schemas,
    )
    return {model: ref for (model, _), ref in keyed.items()}, schemas["$defs"]


# ------------------------------------------------------------------ Pydantic's errors in iss-qa's words

Saying = Callable[[ErrorDetails], tuple[str, str]]


def _always(code: str, message: str) -> Saying:
    return lambda error: (code, message)


def _question(error: ErrorDetails) -> tuple[str, str]:
    kind = error["type"]
    if kind == "missing" or error["input"] is None:
        return "missing_question", "The field 'question' is required."
    if kind == "string_type":
        return "invalid_question", "The field 'question' must be a string."
    if kind == "string_too_short":
        return "empty_question", "The field 'question' is empty."
    length, limit = len(str(error["input"]).strip()), error.get("ctx", {})["max_length"]
    return "question_too_long", f"The question is {length} characters long; the limit is {limit}."


def _top_k(error: ErrorDetails) -> tuple[str, str]:
    if error["type"] == "int_type":
        return "invalid_top_k", "The field 'top_k' must be an integer."
    return "invalid_top_k", "The field 'top_k' must be between {} and {}.".format(*TOP_K_RANGE)


def _history(error: ErrorDetails) -> tuple[str, str]:
    loc, ctx = error["loc"], error.get("ctx", {})
    if len(loc) > 1:
        return (
            "invalid_history",
            f'history[{loc[1]}] must be an object {{"role": "user"|"assistant", "content": str}}.',
        )
    if error["type"] == "too_long":
        return (
            "history_too_long",
            f"The history has {ctx['actual_length']} entries; the limit is {ctx['max_length']} "
            "(send the most recent ones).",
        )
    return "invalid_history", "The field 'history' must be a list of {role, content} objects."


def _messages(error: ErrorDetails) -> tuple[str, str]:
    loc = error["loc"]
    if len(loc) == 1:
        return "invalid_messages", "The field 'messages' must be a non-empty list of messages."
    if loc[2:3] == ("content",) and len(loc) > 3:  # inside the list of parts
        return (
            "unsupported_content",
            f"messages[{loc[1]}].content may only hold text parts ({{'type': 'text', 'text': ...}}).",
        )
    if loc[2:3] == ("content",):
        return "invalid_messages", f"messages[{loc[1]}].content must be a string or a list of text parts."
    roles = ", ".join(CHAT_ROLES)
    return "invalid_messages", f"messages[{loc[1]}] must be an object with a 'role' ({roles}) and 'content'."


FIELD_ERRORS: dict[str, Saying] = {
    "question": _question,
    "top_k": _top_k,
    "history": _history,
    "full": _always("invalid_full", "The field 'full' must be true or false."),
    "model": _always("invalid_model", "The field 'model' must be a non-empty string."),
    "stream": _always("invalid_stream", "The field 'stream' must be true or false."),
    "n": _always("invalid_n", "Only one choice is produced; 'n' must be 1."),
    "stream_options": _always("invalid_stream_options", "The field 'stream_options' must be an object."),
    "messages": _messages,
}


def parse(model: type[M], body: Any) -> M:
    """`body` validated by `model`, or a `BadRequest` that says what is wrong in iss-qa's words.

    Of several problems the first is reported, as a person fixing the request reads it: unknown
    fields, then the fields in the model's order, an entry of a list before the list as a whole.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise refusal(model, exc.errors()) from None


def refusal(model: type[BaseModel], errors: list[ErrorDetails]) -> IssqaError:
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        allowed = ", ".join(model.model_fields)
        return BadRequest(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {allowed}.", code="unknown_field"
        )
    order = list(model.model_fields)
    first = min(errors, key=lambda e: (order.index(str(e["loc"][0])), len(e["loc"]) == 1))
    if first.get("ctx", {}).get("own"):  # raised by a validator here, with iss-qa's own code and message
        return BadRequest(first["msg"], code=first["type"])
    field = str(first["loc"][0])
    code, message = FIELD_ERRORS.get(field, _always(f"invalid_{field}", f"The field '{field}' is invalid."))(
        first
    )
    return BadRequest(message, code=code)
