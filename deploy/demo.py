"""Start N `issqa serve` replicas, Redis and nginx on 127.0.0.1, for a demo of iss-qa behind a load balancer.

    .venv/bin/python deploy/demo.py --replicas 2 --port 8080

builds the index once (the replicas share the folder), starts Redis for the shared rate-limit counts,
the replicas with ISSQA_PROXY_COUNT=1 and ISSQA_RATELIMIT_STORAGE_URI, then nginx with
deploy/nginx.conf pointed at them, and stops them all, by process id, on Ctrl+C. Needs the `nginx`
and `redis-server` programs (Debian packages of those names; `make deploy-tools` installs them).
tests/test_deploy.py drives the same functions.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).with_name("nginx.conf")
START_SECONDS = 180


@dataclass
class Process:
    """A program started in its own process group, stopped by signalling that group."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (a replica is gunicorn's master and its workers)."""
        if self.running():
            os.killpg(self.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `grace` seconds."""
        if self.running():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                assert self.popen is not None
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def wait_until(
    check: Callable[[], bool], process: Process, what: str, seconds: float = START_SECONDS
) -> None:
    """Poll `check()` until it is true; fail with the process's log if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"{process.name} exited before {what}:\n{process.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{process.name}: no {what} within {seconds:.0f} s:\n{process.tail()}")


def ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
        return bool(response.status == 200)


def start_redis(port: int, folder: Path) -> Process:
    """redis-server on 127.0.0.1:`port`, keeping nothing on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port)]
    args += ["--save", "", "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"]
    redis = Process("redis-server", args, folder / "redis.log").start()

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    wait_until(pong, redis, "answer to PING", 30)
    return redis


def replica(port: int, documents: Path, index: Path, log: Path, redis_url: str, **env: str) -> Process:
    """An `issqa serve` replica (not yet started) behind one proxy, counting rate limits in Redis."""
    return Process(
        f"replica :{port}",
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        log,
        {
            "ISSQA_DOCUMENTS": str(documents),
            "ISSQA_INDEX": str(index),
            "ISSQA_PROXY_COUNT": "1",
            "ISSQA_RATELIMIT_STORAGE_URI": redis_url,
            **env,
        },
    )


def start_replica(process: Process) -> Process:
    """Start a replica and wait until its /readyz answers 200."""
    port = process.args[process.args.index("--port") + 1]
    process.start()
    wait_until(lambda: ready(f"http://127.0.0.1:{port}"), process, "200 from /readyz")
    return process


def nginx_config(listen: int, ports: list[int], config: str | None = None) -> str:
    """deploy/nginx.conf with its listening port and its upstream's replicas replaced."""
    text = config if config is not None else CONFIG.read_text()
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
    text, listens = re.subn(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{listen};", text)
    text, blocks = re.subn(
        r"(# replicas: begin\n).*?(\s*# replicas: end)",
        lambda m: m[1] + servers.rstrip("\n") + m[2],
        text,
        flags=re.S,
    )
    if listens != 1 or blocks != 1:
        raise ValueError("deploy/nginx.conf lost its `listen` line or its `# replicas:` markers")
    return text


def start_nginx(prefix: Path, listen: int, ports: list[int]) -> Process:
    """nginx in the foreground, root-less, with everything it writes inside `prefix`."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(nginx_config(listen, ports))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    args = [nginx, "-p", f"{prefix}/", "-c", "nginx.conf", "-e", "error.log"]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejected the configuration:\n{check.stderr}")
    process = Process("nginx", args, prefix / "nginx.out").start()
    wait_until(lambda: listening(listen), process, "listening")
    return process


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


def build_index(documents: Path, index: Path) -> None:
    """One build for all replicas: they share the folder and reload it when its manifest changes."""
    subprocess.run(
        [sys.executable, "-m", "service.cli", "index", "--documents", str(documents), "--index", str(index)],
        cwd=ROOT,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="nginx's port on 127.0.0.1")
    parser.add_argument("--documents", type=Path, default=ROOT / "documents")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="issqa-demo-"))
    build_index(options.documents, options.index)
    processes: list[Process] = []
    try:
        redis_port = free_port()
        processes.append(start_redis(redis_port, work / "redis"))
        ports = [free_port() for _ in range(options.replicas)]
        for i, port in enumerate(ports):
            processes.append(
                start_replica(
                    replica(
                        port,
                        options.documents,
                        options.index,
                        work / f"replica-{i + 1}.log",
                        f"redis://127.0.0.1:{redis_port}",
                        ISSQA_WORKERS=str(options.workers),
                    )
                )
            )
        processes.append(start_nginx(work / "nginx", options.port, ports))
        print(f"iss-qa on http://127.0.0.1:{options.port}/ via nginx, {len(ports)} replicas on ports {ports}")
        print(f"Redis on 127.0.0.1:{redis_port}; logs in {work}. Ctrl+C stops everything.")
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("Stopping.")
    finally:
        for process in reversed(processes):
            process.stop()


if __name__ == "__main__":
    main()
