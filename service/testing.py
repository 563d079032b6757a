"""`issqa serve` as a child process on 127.0.0.1, for the tests and the benchmarks that need the real server.

Tests (tests/live_server.py) and benchmarks (bench/perf.py, bench/load_test.py) start the production
server the same way: a free local port, `/readyz` polled until it answers, the process stopped on
exit however the caller leaves. Keeping that here keeps them from drifting apart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 30


class ServerFailed(RuntimeError):
    """The server exited, or was not ready in time; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Server:
    """A running `issqa serve`: its port and base URL, its process and the file its output goes to (if any)."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ready_within: float | None = 180.0,
) -> Iterator[Server]:
    """`issqa serve FLAGS` on a free 127.0.0.1 port, with `env` added to this process's environment.

    Yields once `/readyz` answers 200 (or at once when `ready_within` is None, for callers that time
    the cold start themselves); raises `ServerFailed` if it exits or takes longer. Output goes to
    `log` (else nowhere). The process is stopped on exit: terminated, killed if it lingers.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]
    with ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
        stack.callback(stop, process)
        server = Server(port, process, log)
        if ready_within is not None:
            wait_ready(server, ready_within)
        yield server


def wait_ready(server: Server, seconds: float) -> None:
    """Wait for `/readyz` to answer 200; `ServerFailed` if the server exits or takes longer than `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(f"issqa serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise ServerFailed(f"issqa serve was not ready within {seconds:g} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server (gunicorn stops its workers), or kill it if it has not stopped in time."""
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
