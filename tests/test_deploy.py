"""Two `issqa serve` replicas behind nginx with Redis, as deploy/ sets them up, under load and failure.

Everything runs on free 127.0.0.1 ports and is stopped by process id. Clients bind distinct loopback
source addresses (127.0.0.10 and up) so that nginx, and behind it the replicas, see distinct clients.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NEW_DOCUMENT = SHARED / "corpora" / "wikipedia-space" / "Artemis_program.txt"
NEW_QUESTION = "Which mission of the Artemis program will land astronauts on the Moon?"
QUESTION = "Who replaced Rogozin?"
CLIENTS = 8
LOAD_SECONDS = 20
AFTER_REBUILD = 8.0
MAX_LOAD_SECONDS = 240  # the run lasts 20 s, or until the restart and the rebuild are done
PER_CLIENT = 250  # requests per client at most; each client's own limit is RATE_LIMIT
PAUSE = 0.2  # seconds between one client's requests
RATE_LIMIT = 300  # per client per hour, counted in Redis across replicas


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_demo", ROOT / "deploy" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = load_demo()


@dataclass
class Deployment:
    documents: Path
    index: Path
    replicas: list[demo.Process]  # type: ignore[name-defined]
    ports: list[int]
    proxy: int


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("deploy")
    documents, index = work / "documents", work / "index"
    shutil.copytree(ROOT / "documents", documents)
    demo.build_index(documents, index)
    processes = []
    try:
        redis_port = demo.free_port()
        processes.append(demo.start_redis(redis_port, work / "redis"))
        ports = [demo.free_port() for _ in range(2)]
        replicas = [
            demo.replica(
                port,
                documents,
                index,
                work / f"replica-{i}.log",
                f"redis://127.0.0.1:{redis_port}",
                ISSQA_WORKERS="1",
                ISSQA_THREADS="4",
                ISSQA_RATE_LIMIT=f"{RATE_LIMIT} per hour",
            )
            for i, port in enumerate(ports)
        ]
        processes += replicas
        for process in replicas:
            process.start()
        for process, port in zip(replicas, ports, strict=True):
            demo.wait_until(lambda p=port: demo.ready(f"http://127.0.0.1:{p}"), process, "200 from /readyz")
        proxy = demo.free_port()
        processes.append(demo.start_nginx(work / "nginx", proxy, ports))
        yield Deployment(documents, index, replicas, ports, proxy)
    finally:
        for process in reversed(processes):
            process.kill()


@dataclass
class Response:
    status: int
    body: bytes
    served_by: str  # the replica that answered last (nginx's X-Served-By lists every one it tried)


def request(
    port: int, method: str, path: str, body: dict[str, object] | None = None, source: str = "127.0.0.1"
) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        served_by = (response.getheader("X-Served-By") or "").split(",")[-1].strip()
        return Response(response.status, response.read(), served_by)
    finally:
        connection.close()


@dataclass
class Load:
    """Clients asking through nginx until told to stop; every request's outcome is kept."""

    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    ok: list[tuple[float, str]] = field(default_factory=list)  # (time, replica) of each answer
    failures: list[str] = field(default_factory=list)

    def client(self, source: str) -> None:
        for _ in range(PER_CLIENT):
            if self.stop.is_set():
                return
            try:
                response = request(self.port, "POST", "/api/ask", {"question": QUESTION}, source)
            except OSError as exc:
                self.failures.append(f"{source}: {type(exc).__name__}: {exc}")
                continue
            body = json.loads(response.body) if response.status == 200 else None
            if body is None or not body["citations"]:
                self.failures.append(f"{source}: HTTP {response.status}: {response.body[:200]!r}")
            else:
                self.ok.append((time.monotonic(), response.served_by))
            time.sleep(PAUSE)


def test_replicas_behind_nginx_survive_a_killed_replica_and_a_rebuild(deployment: Deployment) -> None:
    load = Load(deployment.proxy)
    threads = [
        threading.Thread(target=load.client, args=(f"127.0.0.{10 + i}",), daemon=True) for i in range(CLIENTS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        killed = deployment.replicas[0]
        killed.kill()  # SIGKILL to gunicorn's master and worker, mid-load
        killed.start()
        port = deployment.ports[0]
        demo.wait_until(lambda: demo.ready(f"http://127.0.0.1:{port}"), killed, "200 from /readyz")
        restarted = time.monotonic()
        shutil.copy(NEW_DOCUMENT, deployment.documents)
        admin = ["index", "--documents", str(deployment.documents), "--index", str(deployment.index)]
        rebuild = subprocess.run(
            [sys.executable, "-m", "service.cli", *admin],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=MAX_LOAD_SECONDS,
        )
        assert rebuild.returncode == 0, rebuild.stderr[-2000:]
        assert rebuild.stdout.startswith("Updated the index: 1 added"), rebuild.stdout
        # On for at least 20 s, and for a while after the rebuild: past nginx's fail_timeout (5 s), so
        # that the restarted replica takes requests again, and while the replicas reload the index.
        time.sleep(max(AFTER_REBUILD, LOAD_SECONDS - (time.monotonic() - started)))
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(90)
    assert not any(thread.is_alive() for thread in threads)
    assert load.failures == []
    assert len(load.ok) >= CLIENTS * 10
    replicas = {f"127.0.0.1:{port}" for port in deployment.ports}
    assert {served for _, served in load.ok} == replicas
    assert any(served == f"127.0.0.1:{deployment.ports[0]}" for t, served in load.ok if t > restarted)

    for port in deployment.ports:  # each replica on its own, not through nginx
        response = request(port, "POST", "/api/ask", {"question": NEW_QUESTION})
        assert response.status == 200, response.body[:300]
        cited = {c["document_id"] for c in json.loads(response.body)["citations"]}
        assert "artemis-program" in cited, (port, cited)


def test_the_rate_limit_holds_across_replicas(deployment: Deployment) -> None:
    responses = [
        request(deployment.proxy, "GET", "/api/documents", source="127.0.0.99")
        for _ in range(RATE_LIMIT + 20)
    ]
    statuses = [r.status for r in responses]
    # One count for this client in Redis: exactly the limit passes, whichever replica answers.
    assert statuses == [200] * RATE_LIMIT + [429] * 20
    replicas = {f"127.0.0.1:{port}" for port in deployment.ports}
    assert {r.served_by for r in responses[:RATE_LIMIT]} == replicas
    assert {r.served_by for r in responses[RATE_LIMIT:]} == replicas
    assert json.loads(responses[-1].body)["error"]["code"] == "too_many_requests"
