"""Rate limits, CORS, size limits and security headers: what keeps the service up and contained."""

from __future__ import annotations

import json

import pytest

from service import create_app
from service.errors import ConfigError

ASK = {"question": "Who replaced Rogozin?", "top_k": 1}


@pytest.fixture
def make_client(news_index, embedder):
    def make(**config):
        return create_app({**news_index, "EMBEDDER": embedder, "TESTING": True, **config}).test_client()

    return make


def test_the_rate_limit_answers_429_with_retry_after_in_the_one_error_shape(make_client):
    client = make_client(RATE_LIMIT="3 per minute")
    first = client.post("/api/ask", json=ASK)
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "3" and first.headers["X-RateLimit-Remaining"] == "2"
    assert "Retry-After" not in first.headers  # only a 429 says when to come back
    assert client.get("/api/index").status_code == 200
    assert client.get("/v1/models").status_code == 200  # one budget per client across /api and /v1

    refused = client.post("/api/ask", json=ASK)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert "3 per 1 minute" in refused.get_json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert (
        client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi?"}]}
        ).status_code
        == 429
    )

    # Probes, metrics, the page and the API description are never refused.
    for path in ("/healthz", "/metrics", "/openapi.json", "/docs", "/", "/static/chat.js"):
        assert client.get(path).status_code == 200, path


def test_the_limit_is_per_client_address(make_client):
    client = make_client(RATE_LIMIT="1 per minute", PROXY_COUNT=1)

    def get(address: str) -> int:
        return client.get("/api/index", headers={"X-Forwarded-For": address}).status_code

    assert get("203.0.113.1") == 200
    assert get("203.0.113.1") == 429
    assert get("203.0.113.2") == 200  # another client still has its budget


def test_test_apps_are_unlimited_unless_they_ask_and_off_turns_it_off(make_client):
    for client in (make_client(), make_client(RATE_LIMIT="off")):
        assert all(client.get("/api/index").status_code == 200 for _ in range(30))


def test_a_malformed_rate_limit_is_a_configuration_error(news_index):
    with pytest.raises(ConfigError, match="RATE_LIMIT"):
        create_app({**news_index, "RATE_LIMIT": "lots"})


def test_cors_is_off_by_default(make_client):
    client = make_client()
    response = client.get("/api/index", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/api/ask", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_configured_origins_may_read_the_api_and_no_others(make_client):
    client = make_client(CORS_ORIGINS="https://ui.example, https://other.example")
    allowed = client.get("/api/index", headers={"Origin": "https://ui.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "Origin" in allowed.headers["Vary"]
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]

    refused = client.get("/api/index", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers and "Origin" in refused.headers["Vary"]

    preflight = client.options(
        "/v1/chat/completions",
        headers={"Origin": "https://other.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://other.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]

    page = client.get("/", headers={"Origin": "https://ui.example"})
    assert "Access-Control-Allow-Origin" not in page.headers  # only the API is shared

    anyone = make_client(CORS_ORIGINS=["*"]).get("/openapi.json", headers={"Origin": "https://x.example"})
    assert anyone.headers["Access-Control-Allow-Origin"] == "*"


def test_history_is_limited_in_entries_and_characters(make_client):
    client = make_client(MAX_HISTORY_TURNS=4, MAX_HISTORY_CHARS=100)
    turn = {"role": "user", "content": "Who?"}
    assert client.post("/api/ask", json={**ASK, "history": [turn] * 4}).status_code == 200
    response = client.post("/api/ask", json={**ASK, "history": [turn] * 5})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "history_too_long"
    response = client.post("/api/ask", json={**ASK, "history": [{"role": "user", "content": "x" * 101}]})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "history_too_long"


def test_the_defaults_fit_what_the_chat_page_sends(make_client):
    client = make_client()
    history = [{"role": r, "content": "y" * 900} for _ in range(8) for r in ("user", "assistant")]  # 8 turns
    assert client.post("/api/ask", json={**ASK, "history": history}).status_code == 200


def test_unpaired_surrogates_are_refused_not_crashed_on(make_client):
    client = make_client()
    for body in (
        '{"question": "\\ud800?"}',
        '{"question": "ok?", "history": [{"role": "user", "content": "\\udfff"}]}',
    ):
        response = client.post("/api/ask", data=body, content_type="application/json")
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"


SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "X-Request-ID")


def test_every_response_carries_the_security_headers(make_client, app_for_errors):
    client = make_client(RATE_LIMIT="8 per minute")
    responses = {
        "page": client.get("/"),
        "docs": client.get("/docs"),
        "static": client.get("/static/docs.js"),
        "openapi": client.get("/openapi.json"),
        "metrics": client.get("/metrics"),
        "health": client.get("/healthz"),
        "answer": client.post("/api/ask", json=ASK),
        "stream": client.post("/api/ask", json=ASK, headers={"Accept": "text/event-stream"}),
        "400": client.post("/api/ask", data="nope"),
        "404": client.get("/api/nothing"),
        "405": client.get("/api/ask"),
        "413": client.post("/api/ask", data="x" * (65 * 1024)),
        "500": app_for_errors.post("/api/ask", json=ASK),
    }
    while (limited := client.get("/api/index")).status_code != 429:
        pass
    responses["429"] = limited
    for name, response in responses.items():
        for header in SECURITY_HEADERS:
            assert response.headers.get(header), (name, header)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        if response.status_code >= 400:
            assert set(json.loads(response.data)) == {"error"}, name


@pytest.fixture
def app_for_errors(news_index, embedder, monkeypatch):
    app = create_app({**news_index, "EMBEDDER": embedder, "TESTING": True})

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.extensions["issqa"], "ask", explode)
    return app.test_client()
