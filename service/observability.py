"""Health, readiness and Prometheus metrics routes, plus request ids and one JSON log line per request.

Operators need to tell "the process is up" from "it can answer", see traffic and latency by route, and
follow one request through the logs; all of it is wired into every app by `init_app`.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .engine import Engine
from .errors import IssqaError
from .models import Health, Ready
from .store import MANIFEST, Manifest, read_manifest

bp = Blueprint("ops", __name__)
access_log = logging.getLogger("issqa.access")
error_log = logging.getLogger("issqa.error")

REQUEST_ID_HEADER = "X-Request-ID"
# A client's own request id is kept when it is short and plain, so it can be followed across services;
# anything else is replaced, so that logs never carry attacker-chosen markup or line breaks.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
READY_PROBE_QUESTION = "What do the documents report?"
READY_CACHE_SECONDS = 5.0
EXTENSION = "issqa.metrics"
disable_created_metrics()  # type: ignore[no-untyped-call]  # the `*_created` series only double the output; rates need none of them


class Metrics:
    """One app's Prometheus metrics, in a registry of its own so that many apps can live in one process."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "issqa_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "issqa_http_request_duration_seconds",
            "Time from receiving a request to its response being ready, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "issqa_answers",
            "Questions answered from the documents (answered=true) or refused (answered=false).",
            ["answered"],
            registry=self.registry,
        )
        self.rebuilds = Counter(
            "issqa_index_rebuilds", "Index builds run by this process.", registry=self.registry
        )
        self.index_collector = _IndexCollector(engine)
        self.registry.register(self.index_collector)

    def exposition_registry(self) -> CollectorRegistry:
        """What a scrape reports: this registry, or under several gunicorn workers (prometheus_client's
        multiprocess mode, `PROMETHEUS_MULTIPROC_DIR` set by `issqa serve`) every worker's figures summed."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        registry = CollectorRegistry()
        registry.register(_WorkersCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        registry.register(self.index_collector)
        return registry


class _WorkersCollector(Collector):
    """Every gunicorn worker's figures summed, as prometheus_client's `MultiProcessCollector` sums them,
    leaving out a file a worker has created but not yet sized.

    A worker creates its metrics file first and sizes it after; a scrape in that instant failed as a
    whole with a `struct.error` and answered 500 (prometheus/client_python#1199). An empty file holds
    nothing yet, so nothing is lost by skipping it.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = [f for f in glob.glob(os.path.join(self.path, "*.db")) if _holds_anything(f)]
        yield from MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def _holds_anything(path: str) -> bool:
    """Whether a worker's metrics file has been sized (a worker that exits may also remove it)."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


class _IndexCollector(Collector):
    """Reports what the index on disk holds at scrape time, so the figures follow rebuilds by any process.

    It reads the manifest (again only when it changed), never the model: a scrape must stay cheap and
    must not load anything.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seen: tuple[int, Manifest | None] | None = None

    def _manifest(self) -> Manifest | None:
        path = self.engine.settings.index / MANIFEST
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        if self._seen is None or self._seen[0] != mtime:
            self._seen = (mtime, read_manifest(self.engine.settings.index))
        return self._seen[1]

    def collect(self) -> Iterator[Metric]:
        documents = GaugeMetricFamily("issqa_index_documents", "Documents in the index on disk.")
        passages = GaugeMetricFamily("issqa_index_passages", "Passages in the index on disk.")
        built = GaugeMetricFamily(
            "issqa_index_built_timestamp_seconds", "When the index on disk was built (Unix time)."
        )
        manifest = self._manifest()
        documents.add_metric([], len(manifest.documents) if manifest else 0)
        passages.add_metric([], manifest.passages if manifest else 0)
        built.add_metric([], _timestamp(manifest.built_at) if manifest else 0)
        yield from (documents, passages, built)


def _timestamp(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


def metrics(app: Flask | None = None) -> Metrics:
    """The metrics of `app` (default: the current app)."""
    found: Metrics = (app or current_app).extensions[EXTENSION]
    return found


def record_answer(answered: bool) -> None:
    """Count one answered or refused question; called by the HTTP layers that ask the engine."""
    metrics().answers.labels(answered=str(answered).lower()).inc()


# ------------------------------------------------------------------ routes


@bp.get("/healthz")
def healthz() -> Any:
    """Liveness: the process is up and serving HTTP; it checks nothing else, so it never flaps."""
    return jsonify(Health(status="ok").model_dump())


@bp.get("/readyz")
def readyz() -> Any:
    """Readiness: a current index is loaded and a probe question gets an answer (cached a few seconds)."""
    engine: Engine = current_app.extensions["issqa"]
    state = current_app.extensions.setdefault("issqa.ready", {"at": 0.0, "lock": threading.Lock()})
    now = time.monotonic()
    if now - state["at"] > READY_CACHE_SECONDS:
        with state["lock"]:
            if now - state["at"] > READY_CACHE_SECONDS:
                manifest = engine.index().manifest  # IndexNotReady: 503 in the one error shape
                try:
                    engine.ask(READY_PROBE_QUESTION, 1)
                except IssqaError:
                    raise
                except Exception:
                    error_log.exception("the readiness probe question failed")
                    raise IssqaError(
                        "The index is loaded but a probe question failed; see the server's log.",
                        code="not_ready",
                        status=503,
                    ) from None
                state.update(
                    at=time.monotonic(), documents=len(manifest.documents), passages=manifest.passages
                )
    return jsonify(
        Ready(status="ready", documents=state["documents"], passages=state["passages"]).model_dump()
    )


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Every metric of this app in the Prometheus text format."""
    return Response(generate_latest(metrics().exposition_registry()), content_type=CONTENT_TYPE_LATEST)


# ------------------------------------------------------------------ hooks and logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's `fields`, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time, so replaced streams (tests, daemons) still work."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging() -> None:
    """Send the `issqa` loggers to stderr as JSON lines, once per process, without duplicating lines.

    The server's entry point calls it (`issqa serve`; any other WSGI server's start-up script should
    too); the app itself only emits records, so that `issqa ask` and library use print no log lines.
    """
    logger = logging.getLogger("issqa")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # servers configure the root logger; one line per request, not two


def request_id() -> str:
    """The current request's id (taken from a sane `X-Request-ID` header, else a new one)."""
    rid = g.get("request_id")
    if rid is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_id = rid
    return str(rid)


def init_app(app: Flask) -> None:
    """Register the ops routes, the metrics, the request id and the access log on `app`.

    Call it before any other extension registers `before_request` hooks, so that the request id and the
    clock are set before anything (a rate limit, a body too large) can answer early.
    """
    engine: Engine = app.extensions["issqa"]
    app.extensions[EXTENSION] = Metrics(engine)
    _count_builds(app, engine)
    app.register_blueprint(bp)

    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()
        request_id()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id()
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method = request.method
        status = response.status_code
        found = metrics(app)
        found.requests.labels(route=route, method=method, status=str(status)).inc()
        found.latency.labels(route=route, method=method).observe(elapsed)
        if app.config.get("ACCESS_LOG", True):
            access_log.info(
                "%s %s %s",
                method,
                request.path,
                status,
                extra={
                    "fields": {
                        "request_id": request_id(),
                        "method": method,
                        "path": request.path,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "bytes": response.content_length,
                        "streamed": response.is_streamed,
                        "remote_addr": request.remote_addr,
                        "user_agent": request.user_agent.string[:200],
                    }
                },
            )
        return response


def _count_builds(app: Flask, engine: Engine) -> None:
    """Count the index builds this app's engine runs (at `issqa serve` start-up or on request)."""
    build = engine.build

    def counted_build(*args: Any, **kwargs: Any) -> Any:
        report = build(*args, **kwargs)
        metrics(app).rebuilds.inc()
        return report

    engine.build = counted_build  # type: ignore[method-assign]


def log_unexpected(exc: BaseException) -> None:
    """Log an unhandled error with its traceback and request id: the traceback goes to logs, never to clients."""
    error_log.error(
        "unhandled error: %s",
        type(exc).__name__,
        exc_info=exc,
        extra={"fields": {"request_id": request_id(), "method": request.method, "path": request.path}},
    )
