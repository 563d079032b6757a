"""`issqa serve` as a real process on 127.0.0.1, for tests that need the production server and real clients.

The fixture is session-scoped: one server (real model, the shared `news_index`) serves every test
that asks for it, and it is stopped when the session ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 180


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL and the file its stdout and stderr go to."""

    url: str
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait for `/readyz` to answer 200; fail with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"issqa serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"issqa serve was not ready within {START_SECONDS} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_server(
    documents: Path, index: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`issqa serve` over `documents` and `index` on a free 127.0.0.1 port; yields its base URL.

    The server builds the index first if it is missing or stale; the URL is yielded once `/readyz`
    answers, and the process is stopped on exit. `env` adds or overrides `ISSQA_*` settings.
    """
    env = {
        **os.environ,
        "ISSQA_DOCUMENTS": str(documents),
        "ISSQA_INDEX": str(index),
        "ISSQA_HOST": "127.0.0.1",
        **(env or {}),
    }
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def live_server(
    news_index: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`issqa serve` over the shared index on a free 127.0.0.1 port, with the default configuration."""
    log = tmp_path_factory.mktemp("live") / "serve.log"
    with running_server(news_index["DOCUMENTS"], news_index["INDEX"], log) as url:
        yield LiveServer(url, log)
