"""The OpenAI-compatible endpoints: the official `openai` client against the live server, and the edge cases."""

from __future__ import annotations

import json
import re
import urllib.request

import openai
import openai.types as openai_types
import pytest
from openai import OpenAI

from service import create_app, models
from service.openai_api import MODEL_ID, SOURCES_HEADING

from .live_server import LiveServer

QUESTION = "Who replaced Rogozin?"
MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> OpenAI:
    """The official client, pointed at the live server; iss-qa needs no key, the client needs one."""
    return OpenAI(base_url=f"{live_server.url}/v1", api_key="not-needed", max_retries=0, timeout=60)


def _api_answer(live_server: LiveServer, question: str, history: list | None = None) -> dict:
    body = json.dumps({"question": question, "history": history or []}).encode()
    request = urllib.request.Request(
        f"{live_server.url}/api/ask", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def test_models_lists_iss_qa(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [MODEL_ID]
    assert client.models.retrieve(MODEL_ID).owned_by == "iss-qa"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_plain_completion_carries_the_answer_and_its_sources(client: OpenAI, live_server: LiveServer) -> None:
    completion = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
    )
    assert completion.object == "chat.completion" and completion.model == MODEL_ID
    [choice] = completion.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content
    expected = _api_answer(live_server, QUESTION)

    # The content is the same answer as /api/ask, then the numbered sources, one per citation.
    answer, sources = content.split(SOURCES_HEADING)
    assert answer == expected["answer"] and expected["answered"]
    lines = sources.splitlines()
    assert [int(MARKER.search(line).group(1)) for line in lines] == [c["n"] for c in expected["citations"]]
    for line, citation in zip(lines, expected["citations"], strict=True):
        assert citation["title"] in line
    assert {int(n) for n in MARKER.findall(answer)} <= {c["n"] for c in expected["citations"]}

    # The structured extra field has the citations, passages and offsets included.
    extra = completion.model_extra["issqa"]
    assert extra["answered"] is True
    assert extra["citations"] == expected["citations"]
    assert extra["confidence"] == expected["confidence"] and 0.0 < extra["confidence"] <= 1.0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streamed_completion_joins_to_the_plain_one(client: OpenAI) -> None:
    plain = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].model_extra["issqa"]["citations"] == plain.model_extra["issqa"]["citations"]
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len(pieces) > 5  # word-sized pieces, not one blob
    assert "".join(pieces) == plain.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_earlier_messages_are_the_history_without_their_sources(
    client: OpenAI, live_server: LiveServer
) -> None:
    first = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    said = first.choices[0].message.content
    follow_up = client.chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": said},
            {"role": "user", "content": "What was his previous job?"},
        ],
    )
    expected = _api_answer(
        live_server,
        "What was his previous job?",
        [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": said.split(SOURCES_HEADING)[0]},
        ],
    )
    assert follow_up.choices[0].message.content.split(SOURCES_HEADING)[0] == expected["answer"]


def test_errors_reach_the_client_as_status_errors(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "assistant", "content": "Hi"}])
    assert caught.value.status_code == 400
    assert "last message" in str(caught.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_ID, messages=[])


# ------------------------------------------------------------------ edge cases, in process


@pytest.fixture
def chat(news_index, embedder):
    app = create_app({**news_index, "EMBEDDER": embedder, "TESTING": True, "MAX_HISTORY_TURNS": 4})
    client = app.test_client()

    def post(body: object, **kwargs):
        return client.post(
            "/v1/chat/completions", data=json.dumps(body), content_type="application/json", **kwargs
        )

    return post


BAD_BODIES = [
    ({"model": MODEL_ID}, "invalid_messages"),
    ({"messages": "hi"}, "invalid_messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "invalid_messages"),
    ({"messages": [{"role": "user", "content": 42}]}, "invalid_messages"),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "unsupported_content",
    ),
    ({"messages": [{"role": "user", "content": "   "}]}, "empty_question"),
    ({"messages": [{"role": "user", "content": "x" * 2001}]}, "question_too_long"),
    ({"messages": [{"role": "user", "content": "Who?"}], "n": 2}, "invalid_n"),
    ({"messages": [{"role": "user", "content": "Who?"}], "stream": "yes"}, "invalid_stream"),
    ({"messages": [{"role": "user", "content": "Who?"}], "model": 7}, "invalid_model"),
    ({"messages": [{"role": "user", "content": "Who?"}], "top_k": 0}, "invalid_top_k"),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_bad_chat_requests_get_the_one_error_shape(chat, body, code):
    response = chat(body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_text_parts_long_conversations_and_unknown_parameters_are_accepted(chat):
    turns = []
    for i in range(30):  # more than MAX_HISTORY_TURNS: the oldest are dropped, not refused
        turns += [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}."},
        ]
    body = {
        "model": "gpt-4o-mini",  # whatever a front end was configured with is echoed back
        "temperature": 0.2,
        "max_tokens": 50,
        "messages": [*turns, {"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
    }
    response = chat(body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["model"] == "gpt-4o-mini"


def test_chat_bodies_may_be_larger_than_api_bodies(chat, news_index, embedder):
    padding = [{"role": "system", "content": "x" * (100 * 1024)}]
    response = chat({"messages": [*padding, {"role": "user", "content": QUESTION}]})
    assert response.status_code == 200
    response = chat({"messages": [{"role": "system", "content": "x" * (300 * 1024)}]})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


# ------------------------------------------------------------------ the wire format is OpenAI's own

OPENAI_TWINS = [  # iss-qa's model, and the official client's model of the same object
    (models.ChatCompletion, openai_types.chat.ChatCompletion),
    (models.CompletionChoice, openai_types.chat.chat_completion.Choice),
    (models.CompletionMessage, openai_types.chat.ChatCompletionMessage),
    (models.ChatCompletionChunk, openai_types.chat.ChatCompletionChunk),
    (models.ChunkChoice, openai_types.chat.chat_completion_chunk.Choice),
    (models.Delta, openai_types.chat.chat_completion_chunk.ChoiceDelta),
    (models.Usage, openai_types.CompletionUsage),
    (models.Model, openai_types.Model),
]


@pytest.mark.parametrize(("ours", "theirs"), OPENAI_TWINS, ids=lambda m: m.__name__)
def test_every_field_sent_is_one_of_openais(ours, theirs):
    assert set(ours.model_fields) - {"issqa"} <= set(theirs.model_fields)


def test_responses_validate_as_the_official_clients_types(chat):
    question = {"messages": [{"role": "user", "content": QUESTION}]}
    whole = openai_types.chat.ChatCompletion.model_validate(chat(question).get_json())
    assert whole.model_extra["issqa"]["answered"] is True
    stream = chat({**question, "stream": True, "stream_options": {"include_usage": True}}).get_data(as_text=True)
    data = [line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [openai_types.chat.ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage == whole.usage
