"""The HTTP contract of /api/ask and /api/index, and the one error shape for every bad request."""

from __future__ import annotations

import json

import pytest

from service import create_app
from service.documents import split_front_matter

CITATION_FIELDS = {
    "n", "document_id", "path", "title", "published", "source", "url", "passage", "start", "end", "page", "score",
}  # fmt: skip


def test_a_name_spelled_another_way_is_answered_and_says_how_it_was_read(client):
    body = client.post("/api/ask", json={"question": "What did Krikalyov say?"}).get_json()
    assert body["question"] == "What did Krikalyov say?", "shown as asked"
    assert body["read_as"] == "What did Krikalev say?"
    assert body["answered"] and "Sergei Krikalev" in body["answer"]


def test_ask_returns_the_documented_shape(client, news_index):
    response = client.post("/api/ask", json={"question": "Who replaced Rogozin?"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"question", "read_as", "answer", "answered", "confidence", "took_ms", "citations"}
    assert body["question"] == "Who replaced Rogozin?" and body["read_as"] is None
    assert body["answered"] is True
    assert isinstance(body["took_ms"], float) and body["took_ms"] > 0
    assert len(body["citations"]) == 5  # the default top_k
    for c in body["citations"]:
        assert set(c) == CITATION_FIELDS
        assert c["published"] and c["source"] and c["title"]
        # The passage is exactly the document's body (front matter excluded) from start to end.
        raw = (news_index["DOCUMENTS"] / c["path"]).read_text(encoding="utf-8")
        _, text = split_front_matter(raw)
        assert text[c["start"] : c["end"]] == c["passage"]
    assert all(-1 <= c["score"] <= 1 for c in body["citations"])


def test_top_k_and_history_are_accepted(client):
    body = client.post(
        "/api/ask",
        json={
            "question": "Who replaced him?",
            "top_k": 2,
            "history": [
                {"role": "user", "content": "Who ran Roskosmos in 2022?"},
                {"role": "assistant", "content": "Dmitri Rogozin. [1]"},
            ],
        },
    ).get_json()
    assert len(body["citations"]) == 2


def test_a_body_without_json_content_type_is_still_read(client):
    response = client.post("/api/ask", data='{"question": "Who is Anna Kikina?"}')
    assert response.status_code == 200


BAD_REQUESTS = [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_json"),
    ("", "empty_body"),
    ("{}", "missing_question"),
    ('{"question": ""}', "empty_question"),
    ('{"question": "   "}', "empty_question"),
    ('{"question": 42}', "invalid_question"),
    ('{"question": null}', "missing_question"),
    ('{"question": "' + "x" * 2001 + '"}', "question_too_long"),
    ('{"question": "ok?", "top_k": 0}', "invalid_top_k"),
    ('{"question": "ok?", "top_k": 21}', "invalid_top_k"),
    ('{"question": "ok?", "top_k": "5"}', "invalid_top_k"),
    ('{"question": "ok?", "top_k": 2.5}', "invalid_top_k"),
    ('{"question": "ok?", "top_k": true}', "invalid_top_k"),
    ('{"question": "ok?", "history": "hi"}', "invalid_history"),
    ('{"question": "ok?", "history": [{"role": "system", "content": "x"}]}', "invalid_history"),
    ('{"question": "ok?", "history": [{"role": "user"}]}', "invalid_history"),
    ('{"question": "ok?", "topk": 3}', "unknown_field"),
]


@pytest.mark.parametrize(("body", "code"), BAD_REQUESTS)
def test_bad_requests_get_one_error_shape(client, body, code):
    response = client.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 400
    payload = response.get_json()
    assert set(payload) == {"error"}
    assert payload["error"]["code"] == code
    assert payload["error"]["message"]


def test_wrong_method_unknown_route_and_oversized_body(client):
    response = client.get("/api/ask")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]

    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"

    response = client.post("/api/ask", data="x" * (65 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_unexpected_errors_leak_no_stack_trace(app, client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals /home/user/.venv")

    monkeypatch.setattr(app.extensions["issqa"], "ask", explode)
    response = client.post("/api/ask", json={"question": "Who replaced Rogozin?"})
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "Something went wrong on the server."}
    }
    assert b"Traceback" not in response.data and b"secret" not in response.data


def test_without_an_index_ask_answers_503_with_what_to_do(tmp_path, corpus):
    app = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "none"})
    response = app.test_client().post("/api/ask", json={"question": "Who replaced Rogozin?"})
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "index_not_ready" and "issqa index" in error["message"]


def test_an_index_behind_the_documents_answers_and_says_so(tmp_path, corpus, fake_embedder):
    app = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "index", "EMBEDDER": fake_embedder})
    app.extensions["issqa"].build()
    (corpus / "late-news.txt").write_text("A new article arrived after the build.", encoding="utf-8")
    fresh = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "index", "EMBEDDER": fake_embedder})
    client = fresh.test_client()
    assert client.post("/api/ask", json={"question": "Who flies on Soyuz?"}).status_code == 200
    assert client.get("/api/index").get_json()["stale"] == "documents changed since the last build: 1 added"


def test_an_index_built_for_other_settings_is_never_used(tmp_path, corpus, fake_embedder):
    app = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "index", "EMBEDDER": fake_embedder})
    app.extensions["issqa"].build()
    other = create_app(
        {
            "DOCUMENTS": corpus,
            "INDEX": tmp_path / "index",
            "EMBEDDER": fake_embedder,
            "CHUNK_TARGET_TOKENS": 64,
        }
    )
    response = other.test_client().post("/api/ask", json={"question": "What arrived?"})
    assert response.status_code == 503
    assert "stale" in response.get_json()["error"]["message"]


def test_index_status(client):
    body = client.get("/api/index").get_json()
    assert body["documents"] == 2 and body["passages"] > 10
    assert body["stale"] is None and body["built_at"]
    assert body["model"] == "all-MiniLM-L6-v2"


def test_documents_are_listed_and_readable_whole(client, news_index):
    listing = client.get("/api/documents").get_json()["documents"]
    assert [d["path"] for d in listing] == sorted(p.name for p in news_index["DOCUMENTS"].glob("*.txt"))
    for summary in listing:
        assert summary["title"] and summary["published"] and summary["passages"] > 0
        doc = client.get(f"/api/documents/{summary['id']}").get_json()
        _, text = split_front_matter((news_index["DOCUMENTS"] / doc["path"]).read_text(encoding="utf-8"))
        assert doc["text"] == text
        assert doc["size"] == len(text.encode("utf-8"))
        assert len(doc["passage_offsets"]) == summary["passages"]


def test_an_unknown_document_is_a_json_404(client):
    response = client.get("/api/documents/no-such-doc")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "document_not_found"


def _events(data: str) -> list[tuple[str, dict]]:
    """Server-sent events as (event name, parsed data) pairs."""
    events = []
    for block in data.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_ask_streams_citations_then_word_pieces_then_the_whole_body(client):
    question = {"question": "Who replaced Rogozin?", "top_k": 3}
    plain = client.post("/api/ask", json=question).get_json()
    response = client.post("/api/ask", json=question, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    events = _events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    assert events[0][1] == {
        k: plain[k] for k in ("question", "read_as", "answered", "confidence", "citations")
    }
    pieces = [data["text"] for name, data in events if name == "delta"]
    assert len(pieces) > 3 and "".join(pieces) == plain["answer"]
    done = events[-1][1]
    assert done.pop("took_ms") > 0 and plain.pop("took_ms") > 0
    assert done == plain


def test_json_stays_the_default_and_errors_are_never_streamed(client):
    preferred = client.post(
        "/api/ask",
        json={"question": "Who replaced Rogozin?"},
        headers={"Accept": "application/json, text/event-stream;q=0.5"},
    )
    assert preferred.mimetype == "application/json"
    error = client.post("/api/ask", json={"question": ""}, headers={"Accept": "text/event-stream"})
    assert error.status_code == 400 and error.mimetype == "application/json"
    assert error.get_json()["error"]["code"] == "empty_question"
