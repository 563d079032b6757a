"""`issqa serve` as a real process on 127.0.0.1, for tests that need the production server and real clients.

The fixture is session-scoped: one server (real model, the shared `news_index`) serves every test
that asks for it, and it is stopped when the session ends. Starting and stopping is service/testing.py's,
shared with the benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.testing import ServerFailed, serve


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL and the file its stdout and stderr go to."""

    url: str
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()


@contextmanager
def running_server(
    documents: Path, index: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`issqa serve` over `documents` and `index` on a free 127.0.0.1 port; yields its base URL.

    The server builds the index first if it is missing or stale; the URL is yielded once `/readyz`
    answers, and the process is stopped on exit. `env` adds or overrides `ISSQA_*` settings.
    """
    settings = {"ISSQA_DOCUMENTS": str(documents), "ISSQA_INDEX": str(index), **(env or {})}
    try:
        with serve(env=settings, log=log) as server:
            yield server.url
    except ServerFailed as exc:  # it exited or was not ready: fail with its log, not an error
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def live_server(
    news_index: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`issqa serve` over the shared index on a free 127.0.0.1 port, with the default configuration."""
    log = tmp_path_factory.mktemp("live") / "serve.log"
    with running_server(news_index["DOCUMENTS"], news_index["INDEX"], log) as url:
        yield LiveServer(url, log)
