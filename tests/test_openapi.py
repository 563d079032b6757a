"""The OpenAPI document: it names every route, live responses match it (schemathesis), and /docs renders it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from playwright.sync_api import sync_playwright
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import HTTP_DEFAULTS, create_app
from service.engine import DEFAULTS
from service.openapi import build_spec

from .live_server import LiveServer
from .test_chat import CHROMIUM, LAUNCH_ARGS, _Markup

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def spec_app(news_index, embedder):
    """The app over the real index and model (`TESTING`, so no rate limit: every case reaches its route)."""
    return create_app({**news_index, "EMBEDDER": embedder, "TESTING": True})


def _routes(app) -> set[tuple[str, str]]:
    """Every (OpenAPI path, method) the app serves, its `<converter:name>` written `{name}`."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        found |= {(path, method) for method in rule.methods - IGNORED_METHODS}
    return found


def test_the_document_names_every_route_and_only_those(spec_app):
    spec = spec_app.test_client().get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    assert documented == _routes(spec_app)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and operation["operationId"], (method, path)
            assert "500" in operation["responses"], (method, path)


def test_the_documented_limits_are_the_enforced_ones(news_index, embedder):
    app = create_app({**news_index, "EMBEDDER": embedder, "MAX_QUESTION_CHARS": 300, "MAX_HISTORY_TURNS": 6})
    schemas = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["AskRequest"]["properties"]["question"]["maxLength"] == 300
    assert schemas["AskRequest"]["properties"]["history"]["maxItems"] == 6
    top_k = schemas["AskRequest"]["properties"]["top_k"]
    assert (top_k["minimum"], top_k["maximum"]) == (1, 20)


def test_the_stream_events_are_documented(spec_app):
    spec = spec_app.test_client().get("/openapi.json").get_json()
    ask = spec["paths"]["/api/ask"]["post"]
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    for event in ("`citations`", "`delta`", "`done`"):
        assert event in ask["description"]
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert "chat.completion.chunk" in chat["description"] and "[DONE]" in chat["description"]


def test_the_docs_page_is_local_and_has_no_inline_code(spec_app):
    client = spec_app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    markup = _Markup()
    markup.feed(page.get_data(as_text=True))
    assert markup.scripts and all(s.get("src", "").startswith("/static/") for s in markup.scripts)
    assert not markup.inline_script and markup.style_elements == 0 and markup.style_attributes == []
    assert markup.handlers == []
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    script = client.get("/static/docs.js").get_data(as_text=True)
    assert "innerHTML" not in script and "eval(" not in script and "https://" not in script
    assert client.get("/static/docs.css").status_code == 200


# ------------------------------------------------------------------ schemathesis on the live app


@pytest.fixture(scope="module")
def api_schema(spec_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", spec_app)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SPEC = build_spec({**DEFAULTS, **HTTP_DEFAULTS})  # which operations exist does not depend on the limits
# Valid requests to every operation, and invalid ones to every operation that takes a body (a path
# parameter typed `string` has no invalid values to generate).
CASES = [
    (path, method.upper(), mode)
    for path, item in sorted(SPEC["paths"].items())
    for method, operation in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode.is_positive or "requestBody" in operation
]
# Answering costs tens of milliseconds on a slow machine; reading costs almost nothing.
# Without ISSQA_ADMIN_TOKEN the writing endpoints answer 403 here, so the shared index is never changed.
EXAMPLES = {"POST": 40, "GET": 15, "DELETE": 15}


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_no_5xx_and_every_response_matches_the_document(api_schema, path, method, mode):
    """Generated requests, valid and invalid, to each operation: no 5xx, and every response as documented."""
    operation = api_schema[path][method]
    examples = EXAMPLES[method] if mode.is_positive else EXAMPLES[method] // 2

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()


KNOWN_GOOD = [
    ("/api/ask", {"question": "Who replaced Rogozin?", "top_k": 2}, {}),
    ("/api/ask", {"question": "Who replaced Rogozin?"}, {"Accept": "text/event-stream"}),
    (
        "/v1/chat/completions",
        {"model": "iss-qa", "messages": [{"role": "user", "content": "Who is Anna Kikina?"}]},
        {},
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "Who is Anna Kikina?"}], "stream": True},
        {},
    ),
]


@pytest.mark.parametrize(("path", "body", "headers"), KNOWN_GOOD)
def test_answers_match_the_document(api_schema, path, body, headers):
    """Requests that reach a 200 answer (rare among generated ones for chat) are checked against the document."""
    response = api_schema[path]["POST"].Case(body=body, headers=headers).call_and_validate(checks=CHECKS)
    assert response.status_code == 200


def test_a_429_matches_the_document(news_index, embedder):
    limited = create_app({**news_index, "EMBEDDER": embedder, "TESTING": True, "RATE_LIMIT": "1 per minute"})
    operation = schemathesis.openapi.from_wsgi("/openapi.json", limited)["/api/index"]["GET"]
    assert operation.Case().call_and_validate(checks=CHECKS).status_code == 200
    assert operation.Case().call_and_validate(checks=CHECKS).status_code == 429  # with its Retry-After


# ------------------------------------------------------------------ /docs in a real browser


@pytest.fixture(scope="module")
def docs_page(live_server: LiveServer) -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'make browser' (apt-get install chromium chromium-driver).")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
        page.goto(f"{live_server.url}/docs")
        yield page, problems, outside
        browser.close()


def test_the_docs_page_renders_every_operation_offline(docs_page, live_server: LiveServer):
    page, problems, outside = docs_page
    page.wait_for_selector("#schema-Answer")
    spec_paths = page.evaluate("fetch('/openapi.json').then(r => r.json()).then(s => Object.keys(s.paths))")
    headings = page.locator(".op .path").all_text_contents()
    assert sorted(set(headings)) == sorted(spec_paths)
    assert page.locator("#toc li").count() == len(headings)
    assert "chat.completion.chunk" in page.locator("#op-chatCompletions").inner_text()
    assert problems == [] and outside == []
