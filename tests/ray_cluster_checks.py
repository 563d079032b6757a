"""Index builds on a real two-node Ray cluster, checked against a local build of the same corpus.

Not collected by a plain `pytest` (the name does not start with `test_`): tests/test_distributed.py
runs this module in a pytest of its own inside `unshare --net` with only loopback up, because Ray
probes a public resolver for the machine's address and would advertise an external interface. Here
a head node and a worker node run on 127.0.0.1, each `ray start --block` in its own process group,
stopped by SIGKILL to that group.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from service.chunking import ChunkSettings
from service.distributed import build_on_ray
from service.documents import document_ids
from service.embedding import load_embedder
from service.errors import IssqaError
from service.store import Index, read_manifest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "wikipedia-space"
NEW_DOCUMENT = ROOT / "documents" / "2022-07-15-nasa-resumes-joint-iss-flights-with-russia.txt"
HEAD = "127.0.0.1:6379"  # the namespace is this run's own: nothing else listens here
QUESTIONS = ["How many crew members live on the International Space Station?", "What is a black hole?"]
KILL_DOCUMENTS = ["Artemis_program.txt", "Mars.txt", "Solar_System.txt", "Space_exploration.txt"]
BUILD_SECONDS = 600
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module", autouse=True)
def only_in_a_network_namespace() -> None:
    if os.environ.get("ISSQA_RAY_NETNS") != "1":
        pytest.fail("run by tests/test_distributed.py inside `unshare --net` only (Ray would leave loopback)")


@dataclass
class Node:
    """A `ray start --block` process, the leader of its own process group."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # ray start ignores SIGTERM for long
        self.process.wait()


def start_node(args: list[str], log: Path) -> Node:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("ray")),
                "start",
                "--block",
                "--node-ip-address=127.0.0.1",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,
        )
    groups = os.environ.get("ISSQA_RAY_GROUPS")  # the outer test kills these if this run hangs
    if groups:
        with open(groups, "a") as f:
            f.write(f"{process.pid}\n")
    return Node(process, log)


def alive_nodes() -> int:
    probe = "import ray; ray.init(address='%s', logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    result = subprocess.run(
        [sys.executable, "-c", probe % HEAD], capture_output=True, text=True, env=ENV, timeout=60
    )
    return int(result.stdout.split()[-1]) if result.returncode == 0 and result.stdout.split() else 0


def wait_for_nodes(count: int, nodes: list[Node]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for node in nodes:
            assert node.process.poll() is None, f"ray start exited:\n{node.log.read_text()[-3000:]}"
        if alive_nodes() == count:
            return
        time.sleep(1)
    pytest.fail(f"the cluster did not reach {count} nodes within 120 s")


@dataclass
class Cluster:
    head: Node
    worker: Node
    work: Path  # a scratch folder for documents and indexes


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder holding a copy of the corpus."""
    folder = tmp_path_factory.mktemp("ray-cluster")
    shutil.copytree(CORPUS, folder / "documents")
    return folder


@pytest.fixture(scope="module")
def local_build(work: Path) -> Iterator[subprocess.Popen[str]]:
    """The local build of the corpus, started before the cluster so that the two overlap."""
    folders = ["--documents", str(work / "documents"), "--index", str(work / "index-local")]
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "index", *folders],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate()


@pytest.fixture(scope="module")
def cluster(work: Path, local_build: subprocess.Popen[str]) -> Iterator[Cluster]:
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a limit
    # Ray's default token authentication, with this run's own token (not ~/.ray/auth_token).
    token = work / "auth_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    ENV.update(auth)
    os.environ.update(auth)  # for the builds this process drives itself
    nodes: list[Node] = []
    try:
        nodes.append(
            start_node(
                [
                    "--head",
                    "--port=6379",
                    "--num-cpus=2",
                    "--num-gpus=0",
                    "--include-dashboard=false",
                    f"--temp-dir={temp_dir}",
                    "--object-store-memory=150000000",
                    "--disable-usage-stats",
                ],
                work / "head.log",
            )
        )
        wait_for_nodes(1, nodes)
        nodes.append(
            start_node(
                [f"--address={HEAD}", "--num-cpus=1", "--num-gpus=0", "--object-store-memory=150000000"],
                work / "worker.log",
            )
        )
        wait_for_nodes(2, nodes)
        yield Cluster(nodes[0], nodes[1], work)
    finally:
        for node in reversed(nodes):
            node.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def issqa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
        cwd=ROOT,
        timeout=BUILD_SECONDS,
    )


@dataclass
class Builds:
    documents: Path
    local: Path
    ray: Path
    ray_output: str


@pytest.fixture(scope="module")
def builds(cluster: Cluster, local_build: subprocess.Popen[str]) -> Builds:
    """The corpus built locally and through the cluster (two actors, one document per batch)."""
    documents = cluster.work / "documents"
    ray = cluster.work / "index-ray"
    built = issqa(
        "index", "--documents", str(documents), "--index", str(ray),
        "--ray", HEAD, "--ray-actors", "2", "--ray-batch-size", "1",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    _, errors = local_build.communicate(timeout=BUILD_SECONDS)
    assert local_build.returncode == 0, errors[-3000:]
    return Builds(documents, cluster.work / "index-local", ray, built.stdout)


def contents(folder: Path) -> tuple[dict[int, tuple[str, int, int, str]], np.ndarray]:
    index = Index(folder)
    ids = list(range(index.next_passage_id()))
    passages = index.passages(ids)
    rows = {i: (p.document_id, p.start, p.end, p.text) for i, p in passages.items()}
    return rows, index.vectors(sorted(rows))


def test_the_cluster_build_equals_a_local_build(builds: Builds) -> None:
    local_rows, local_vectors = contents(builds.local)
    ray_rows, ray_vectors = contents(builds.ray)
    assert len(local_rows) > 1000
    assert ray_rows == local_rows  # the same passage ids, documents, offsets and texts
    cosines = np.sum(local_vectors * ray_vectors, axis=1) / (
        np.linalg.norm(local_vectors, axis=1) * np.linalg.norm(ray_vectors, axis=1)
    )
    assert cosines.min() >= 0.9999
    local_manifest, ray_manifest = read_manifest(builds.local), read_manifest(builds.ray)
    assert local_manifest is not None and ray_manifest is not None
    assert ray_manifest.documents == local_manifest.documents
    assert (ray_manifest.model, ray_manifest.chunking) == (local_manifest.model, local_manifest.chunking)
    assert ray_manifest.backend == "torch"  # what the actors ran, whatever the driver's backend


def test_both_nodes_embedded(builds: Builds) -> None:
    lines = builds.ray_output.strip().splitlines()
    assert lines[0].startswith("Rebuilt from scratch: 11 added"), builds.ray_output
    assert lines[-1] == "Embedded on the Ray cluster by 2 actors on 2 nodes.", builds.ray_output


def test_ask_cites_the_same_passages_from_both_indexes(builds: Builds) -> None:
    for question in QUESTIONS:
        answers = []
        for index in (builds.local, builds.ray):
            asked = issqa(
                "ask", "--json", question, "--documents", str(builds.documents), "--index", str(index)
            )
            assert asked.returncode == 0, asked.stderr[-2000:]
            answers.append(json.loads(asked.stdout))
        cited = [[(c["document_id"], c["start"], c["end"]) for c in a["citations"]] for a in answers]
        assert cited[0], f"no citations for {question!r}"
        assert cited[0] == cited[1], question
        assert answers[0]["answer"] == answers[1]["answer"]


def test_only_new_documents_go_to_the_cluster(builds: Builds, cluster: Cluster) -> None:
    documents = cluster.work / "documents-more"
    shutil.copytree(builds.documents, documents)
    shutil.copy(NEW_DOCUMENT, documents)
    local, ray = cluster.work / "index-local-more", cluster.work / "index-ray-more"
    shutil.copytree(builds.local, local)
    shutil.copytree(builds.ray, ray)
    assert issqa("index", "--documents", str(documents), "--index", str(local)).returncode == 0
    built = issqa(
        "index", "--documents", str(documents), "--index", str(ray), env={"ISSQA_RAY_ADDRESS": HEAD}
    )
    assert built.returncode == 0, built.stderr[-3000:]
    first = built.stdout.splitlines()[0]
    assert first.startswith("Updated the index: 1 added, 0 changed, 0 removed, 11 unchanged"), built.stdout
    added = len(Index(ray).passages_of("2022-07-15-nasa-resumes-joint-iss-flights-with-russia"))
    assert f"({added} embedded)" in first
    assert built.stdout.splitlines()[-1] == "Embedded on the Ray cluster by 1 actor on 1 node."
    local_rows, local_vectors = contents(local)
    ray_rows, ray_vectors = contents(ray)
    assert ray_rows == local_rows
    assert np.min(np.sum(local_vectors * ray_vectors, axis=1)) >= 0.9999


def test_a_worker_killed_mid_build_leaves_a_finished_build_or_the_previous_index(
    builds: Builds, cluster: Cluster
) -> None:
    documents = cluster.work / "documents-some"  # four documents: a shorter build, still mid-way when killed
    documents.mkdir()
    for name in KILL_DOCUMENTS:
        shutil.copy(builds.documents / name, documents)
    index = cluster.work / "index-killed"
    shutil.copytree(builds.ray, index)
    before = (index / "manifest.json").read_bytes()
    embedder = load_embedder()
    killed: list[int] = []

    def kill_the_worker(done: int, total: int) -> None:
        if done >= 1 and not killed:
            cluster.worker.kill()
            killed.append(done)

    outcome: dict[str, object] = {}

    def build() -> None:
        try:
            outcome["report"] = build_on_ray(
                HEAD, documents, index, embedder, ChunkSettings(), full=True, actors=2, batch_size=1,
                progress=kill_the_worker,
            )  # fmt: skip
        except IssqaError as exc:
            outcome["error"] = exc.message

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    thread.join(BUILD_SECONDS)
    assert not thread.is_alive(), "the build neither finished nor failed after the worker node died"
    assert killed and killed[0] < len(KILL_DOCUMENTS), "the worker was killed after the last document"
    result = outcome.get("error") or "finished: " + "; ".join(r.summary() for r in outcome["report"])  # type: ignore[attr-defined]
    print(f"worker node killed after {killed[0]} of {len(KILL_DOCUMENTS)} documents; {result}")
    if "error" in outcome:
        message = str(outcome["error"])
        assert message.startswith("the Ray build failed, the index was left as it was: "), message
        assert (index / "manifest.json").read_bytes() == before
        assert contents(index)[0] == contents(builds.ray)[0]
    else:
        assert "report" in outcome, outcome
        rows, vectors = contents(index)
        local_rows, local_vectors = contents(builds.local)
        kept = set(document_ids(KILL_DOCUMENTS).values())
        ids = [i for i in sorted(local_rows) if local_rows[i][0] in kept]  # a full build's ids: 0, 1, ...
        assert [rows[i] for i in sorted(rows)] == [local_rows[i] for i in ids]
        assert np.min(np.sum(local_vectors[ids] * vectors, axis=1)) >= 0.9999
    loaded = Index(index)  # loadable, and it answers a nearest-neighbour search
    assert loaded.search(embedder.encode(QUESTIONS[:1])[0], 3)
