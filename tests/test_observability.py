"""Health, readiness, Prometheus metrics, request ids and the JSON access log."""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.observability import JsonFormatter, configure_logging

from .live_server import LiveServer


@pytest.fixture
def app(news_index, embedder):
    return create_app({**news_index, "EMBEDDER": embedder, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def logged() -> Iterator[list[dict]]:
    """What the `issqa` loggers write during the test, each record as its parsed JSON line."""
    entries: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            entries.append(json.loads(JsonFormatter().format(record)))

    handler = Collect()
    logger = logging.getLogger("issqa")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # what `issqa serve` sets (configure_logging)
    try:
        yield entries
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_healthz_is_alive_even_without_an_index(tmp_path, corpus):
    client = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "none", "TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_not_ready"


def test_readyz_answers_a_probe_question(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["documents"] == 2 and body["passages"] > 10


def test_readyz_fails_when_questions_fail(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model is gone")

    monkeypatch.setattr(app.extensions["issqa"], "ask", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "not_ready"
    assert b"the model is gone" not in response.data


def test_metrics_count_requests_by_route_and_status_and_time_them(client):
    client.post("/api/ask", json={"question": "Who replaced Rogozin?"})
    client.post("/api/ask", json={"question": ""})
    client.post("/api/ask", json={"question": ""})
    client.get("/api/documents/no-such-document")
    client.get("/no/such/route/at/all")
    found = samples(client)

    def requests(route: str, method: str, status: str) -> float:
        labels = (("method", method), ("route", route), ("status", status))
        return found.get(("issqa_http_requests_total", labels), 0)

    assert requests("/api/ask", "POST", "200") == 1
    assert requests("/api/ask", "POST", "400") == 2
    assert requests("/api/documents/<doc_id>", "GET", "404") == 1  # the route template, not the id
    assert requests("<unmatched>", "GET", "404") == 1  # unknown paths never create new series
    count = found[("issqa_http_request_duration_seconds_count", (("method", "POST"), ("route", "/api/ask")))]
    assert count == 3
    assert found[("issqa_http_request_duration_seconds_sum", (("method", "POST"), ("route", "/api/ask")))] > 0
    assert found[("issqa_answers_total", (("answered", "true"),))] == 1
    assert found[("issqa_index_documents", ())] == 2
    assert found[("issqa_index_passages", ())] > 10
    assert found[("issqa_index_built_timestamp_seconds", ())] > 1.6e9


def test_rebuilds_are_counted(tmp_path, corpus, fake_embedder):
    app = create_app({"DOCUMENTS": corpus, "INDEX": tmp_path / "index", "EMBEDDER": fake_embedder})
    client = app.test_client()
    assert samples(client)[("issqa_index_rebuilds_total", ())] == 0
    assert samples(client)[("issqa_index_documents", ())] == 0
    app.extensions["issqa"].build()
    app.extensions["issqa"].build()
    found = samples(client)
    assert found[("issqa_index_rebuilds_total", ())] == 2
    assert found[("issqa_index_documents", ())] == 2


def test_every_response_has_a_request_id_and_a_sane_one_is_kept(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["X-Request-ID"] != generated
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123.x"}).headers["X-Request-ID"] == "abc-123.x"
    )
    for hostile in ("a b", "<script>", "x" * 200, "line\\nbreak"):
        kept = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", kept)
    assert client.get("/nowhere").headers["X-Request-ID"]  # errors too


def test_one_json_log_line_per_request_with_its_id(client, logged):
    """Each request is one record, which the JSON formatter turns into one line with the request's id."""
    client.post("/api/ask", json={"question": "Who replaced Rogozin?"}, headers={"X-Request-ID": "req-1"})
    client.get("/api/nowhere")
    access = [entry for entry in logged if entry["logger"] == "issqa.access"]
    assert len(access) == 2
    first, second = access
    assert first["request_id"] == "req-1" and first["status"] == 200 and first["route"] == "/api/ask"
    assert first["method"] == "POST" and first["duration_ms"] > 0 and first["level"] == "INFO"
    assert second["status"] == 404 and second["route"] == "<unmatched>" and second["request_id"] != "req-1"


def test_unexpected_errors_are_logged_with_traceback_and_id_but_not_returned(
    app, client, monkeypatch, logged
):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.extensions["issqa"], "ask", explode)
    response = client.post("/api/ask", json={"question": "Who?"}, headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500 and b"secret" not in response.data
    [error] = [entry for entry in logged if entry["logger"] == "issqa.error"]
    assert error["request_id"] == "boom-1" and "secret internals" in error["exception"]
    assert "Traceback" in error["exception"]


def test_the_production_server_logs_one_json_line_per_request(live_server: LiveServer):
    request = urllib.request.Request(f"{live_server.url}/healthz", headers={"X-Request-ID": "live-probe-1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["X-Request-ID"] == "live-probe-1"
    with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=30) as response:
        generated = response.headers["X-Request-ID"]
    entries = [json.loads(line) for line in live_server.log_lines() if line.startswith('{"time"')]
    by_id = {entry.get("request_id"): entry for entry in entries}
    assert by_id["live-probe-1"]["path"] == "/healthz" and by_id["live-probe-1"]["status"] == 200
    assert by_id[generated]["path"] == "/healthz"
    assert sum(1 for entry in entries if entry.get("request_id") == "live-probe-1") == 1


def test_the_access_log_can_be_turned_off(news_index, embedder, logged):
    client = create_app(
        {**news_index, "EMBEDDER": embedder, "TESTING": True, "ACCESS_LOG": False}
    ).test_client()
    assert client.get("/healthz").status_code == 200
    assert [entry for entry in logged if entry["logger"] == "issqa.access"] == []


def test_configured_logging_writes_one_json_line_per_request_to_stderr(client, capsys):
    logger = logging.getLogger("issqa")
    before = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure_logging()
        configure_logging()  # idempotent: still one line per request
        client.get("/healthz", headers={"X-Request-ID": "stderr-once"})
        lines = [line for line in capsys.readouterr().err.splitlines() if "stderr-once" in line]
    finally:
        logger.handlers[:] = before[0]
        logger.setLevel(before[1])  # through setLevel, which also clears the loggers' level cache
        logger.propagate = before[2]
    assert len(lines) == 1
    assert json.loads(lines[0])["request_id"] == "stderr-once"


def test_a_scrape_skips_a_worker_file_not_yet_sized(tmp_path, client, monkeypatch):
    # Under gunicorn a worker creates its metrics file and sizes it after; a scrape in between must
    # still sum the other workers' figures (prometheus/client_python#1199), not answer 500.
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    written = MmapedDict(str(tmp_path / "counter_101.db"))
    key = mmap_key("issqa_answers", "issqa_answers_total", ["answered"], ["true"], "Answers.")
    written.write_value(key, 3.0, 0.0)
    written.close()
    (tmp_path / "counter_102.db").touch()  # the other worker, between creating and sizing its file
    with pytest.raises(Exception, match="unpack_from"):
        list(MultiProcessCollector(None, path=str(tmp_path)).collect())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    found = samples(client)
    assert found[("issqa_answers_total", (("answered", "true"),))] == 3.0
    assert ("issqa_index_passages", ()) in found  # the index figures are still reported beside them
