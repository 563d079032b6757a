"""A bounded load test of the production server: `issqa serve` on 127.0.0.1, N clients, T seconds.

It starts the real server (`issqa serve`: gunicorn) on a free local port, runs concurrent keep-alive clients that mix
valid questions (JSON, streamed, OpenAI-compatible) with invalid and hostile requests, then stops the
server and prints what came back: requests, statuses, 5xx, dropped connections, latency percentiles
and throughput. It stops by itself after `--seconds`; the rate limit is off unless `--rate-limit` says
otherwise, since every client comes from one address.

    .venv/bin/python bench/load_test.py --seconds 30 --clients 16
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.testing import ServerFailed, serve  # noqa: E402

START_SECONDS = 300
REQUEST_TIMEOUT = 60.0
QUESTIONS = [
    "Who replaced Rogozin?",
    "Which cosmonaut flies on SpaceX?",
    "When is the first cross flight planned?",
    "How many flights are planned?",
    "What did Russia threaten in February?",
    "Who is Anna Kikina?",
    "What is the capital of Peru?",
    "Why was an extra Soyuz flight agreed?",
]
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: its name, share, method, path, body and headers."""

    name: str
    weight: int
    method: str
    path: str
    body: Any = None  # a callable returning bytes, or None
    headers: dict[str, str] = field(default_factory=dict)


def _ask(rng: random.Random) -> bytes:
    return json.dumps({"question": rng.choice(QUESTIONS), "top_k": rng.randint(1, 6)}).encode()


def _chat(rng: random.Random) -> bytes:
    messages = [
        {"role": "user", "content": "Who ran Roskosmos in 2022?"},
        {"role": "assistant", "content": "Dmitri Rogozin. [1]\n\nSources:\n- [1] An article"},
        {"role": "user", "content": rng.choice(QUESTIONS)},
    ]
    return json.dumps({"model": "iss-qa", "messages": messages}).encode()


MIX = [
    Kind("ask", 36, "POST", "/api/ask", _ask, JSON_HEADERS),
    Kind("ask-stream", 8, "POST", "/api/ask", _ask, {**JSON_HEADERS, "Accept": "text/event-stream"}),
    Kind("chat", 8, "POST", "/v1/chat/completions", _chat, JSON_HEADERS),
    Kind("documents", 4, "GET", "/api/documents"),
    Kind("healthz", 4, "GET", "/healthz"),
    Kind("metrics", 2, "GET", "/metrics"),
    Kind("bad-json", 6, "POST", "/api/ask", lambda r: b'{"question": "unterminated', JSON_HEADERS),
    Kind(
        "too-long",
        6,
        "POST",
        "/api/ask",
        lambda r: json.dumps({"question": "x" * 2500}).encode(),
        JSON_HEADERS,
    ),
    Kind("bad-top-k", 6, "POST", "/api/ask", lambda r: b'{"question": "Who?", "top_k": 99}', JSON_HEADERS),
    Kind(
        "bad-history", 4, "POST", "/api/ask", lambda r: b'{"question": "Who?", "history": "x"}', JSON_HEADERS
    ),
    Kind("surrogate", 4, "POST", "/api/ask", lambda r: b'{"question": "\\ud800?"}', JSON_HEADERS),
    Kind("oversized", 4, "POST", "/api/ask", lambda r: b"x" * (70 * 1024), JSON_HEADERS),
    Kind("not-found", 4, "GET", "/api/nothing-here"),
    Kind("wrong-method", 4, "GET", "/api/ask"),
]


@dataclass
class Results:
    """What every client saw, merged under a lock."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            self.statuses[status] += 1
            self.by_kind.setdefault(kind, Counter())[status] += 1

    def drop(self, kind: str, error: Exception) -> None:
        with self.lock:
            self.dropped += 1
            if len(self.errors) < 20:
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")


def client(port: int, deadline: float, seed: int, results: Results) -> None:
    """One keep-alive client: weighted random requests until the deadline; a broken connection is counted."""
    rng = random.Random(seed)
    weights = [k.weight for k in MIX]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    while time.monotonic() < deadline:
        kind = rng.choices(MIX, weights)[0]
        body = kind.body(rng) if kind.body else None
        started = time.perf_counter()
        try:
            conn.request(kind.method, kind.path, body=body, headers=kind.headers)
            response = conn.getresponse()
            response.read()
            results.record(kind.name, response.status, time.perf_counter() - started)
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        except (OSError, http.client.HTTPException) as exc:
            results.drop(kind.name, exc)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summarise(results: Results, seconds: float, clients: int) -> dict[str, Any]:
    """The figures to print: counts, statuses, failures and latency percentiles in milliseconds."""
    everything = [x for values in results.latencies.values() for x in values]
    valid = [x for name in ("ask", "ask-stream", "chat") for x in results.latencies.get(name, [])]

    def ms(values: list[float]) -> dict[str, float]:
        return {f"p{q}": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)} | {
            "max": round(max(values, default=0) * 1000, 1)
        }

    count = sum(results.statuses.values())
    return {
        "clients": clients,
        "seconds": round(seconds, 1),
        "requests": count,
        "requests_per_second": round(count / seconds, 1) if seconds else 0.0,
        "statuses": {str(k): v for k, v in sorted(results.statuses.items())},
        "server_errors_5xx": sum(v for k, v in results.statuses.items() if k >= 500),
        "dropped_connections": results.dropped,
        "latency_ms_all": ms(everything),
        "latency_ms_answers": ms(valid),
        "answers": len(valid),
        "by_kind": {name: dict(sorted(c.items())) for name, c in sorted(results.by_kind.items())},
        "errors": results.errors,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, load it for `args.seconds`, stop it, and return the figures."""
    flags = ["--threads", str(args.threads), "--documents", str(args.documents), "--index", str(args.index)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        try:
            with serve(flags, {"ISSQA_RATE_LIMIT": args.rate_limit}, log, START_SECONDS) as server:
                results = Results()
                started = time.monotonic()
                deadline = started + args.seconds
                threads = [
                    threading.Thread(
                        target=client, args=(server.port, deadline, args.seed + i, results), daemon=True
                    )
                    for i in range(args.clients)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(args.seconds + REQUEST_TIMEOUT + 5)
                elapsed = time.monotonic() - started
                if server.process.poll() is not None:
                    results.errors.append(f"the server exited with status {server.process.returncode}")
        except ServerFailed as exc:
            raise SystemExit(str(exc)) from None
        server_log = log.read_text(encoding="utf-8", errors="replace")
    figures = summarise(results, elapsed, args.clients)
    figures["server_tracebacks"] = server_log.count("Traceback")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="How long to load the server.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent keep-alive clients.")
    parser.add_argument(
        "--threads", type=int, default=4, help="Request threads per server worker (serve's default)."
    )
    parser.add_argument("--documents", type=Path, default=ROOT / "documents")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--rate-limit", default="off", help="ISSQA_RATE_LIMIT for the server (default off).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 120 or not 0 < args.clients <= 64:
        parser.error("keep the load bounded: 0 < --seconds <= 120 and 0 < --clients <= 64")

    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"{figures['requests']} requests in {figures['seconds']} s from {figures['clients']} clients "
            f"({figures['requests_per_second']} requests/s)"
        )
        print(f"statuses: {figures['statuses']}")
        print(f"5xx: {figures['server_errors_5xx']}   dropped connections: {figures['dropped_connections']}")
        for label, key in (("all requests", "latency_ms_all"), ("answers", "latency_ms_answers")):
            lat = figures[key]
            print(
                f"latency, {label}: p50 {lat['p50']} ms  p95 {lat['p95']} ms  p99 {lat['p99']} ms  max {lat['max']} ms"
            )
        for error in figures["errors"]:
            print(f"error: {error}")
    ok = figures["server_errors_5xx"] == 0 and figures["dropped_connections"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
