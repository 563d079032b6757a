"""A short, bounded load test of the production server: concurrent valid and invalid requests, no 5xx.

It runs `bench/load_test.py` (the script behind docs/load-test.md) for a few seconds with fewer clients,
over the shared index: the server must answer everything, refuse the bad requests with 4xx, and never
drop a connection or log a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 5
CLIENTS = 8


def test_the_server_stays_up_under_mixed_load(news_index):
    command = [
        sys.executable,
        str(ROOT / "bench" / "load_test.py"),
        "--seconds", str(SECONDS),
        "--clients", str(CLIENTS),
        "--documents", str(news_index["DOCUMENTS"]),
        "--index", str(news_index["INDEX"]),
        "--json",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    figures = json.loads(result.stdout)
    assert figures["server_errors_5xx"] == 0, figures
    assert figures["dropped_connections"] == 0, figures["errors"]
    assert figures["server_tracebacks"] == 0
    assert result.returncode == 0
    assert figures["requests"] >= 20 and figures["answers"] >= 5
    assert {"200", "400"} <= set(figures["statuses"])  # valid and invalid requests were both served
    for kind in ("bad-json", "too-long", "bad-top-k", "bad-history", "surrogate", "oversized", "not-found"):
        assert all(400 <= int(status) < 500 for status in figures["by_kind"].get(kind, {})), kind
    for kind in ("ask", "ask-stream", "chat", "healthz"):
        assert set(figures["by_kind"].get(kind, {})) <= {"200"}, kind
    assert figures["latency_ms_answers"]["p99"] > 0
