"""What iss-qa adds on top of the embedding model: every figure beside its raw baseline from the same run.

"Raw" is the packaged model called directly through sentence-transformers (torch, `--raw-threads`
threads, 2 by default), plus a flat FAISS search: no web server, no answer. With `ISSQA_MODEL` set
(a model folder, say), iss-qa's servers and the raw baseline both load that model.

1. In process, warm: `Engine.ask` (the code behind /api/ask) per question against the raw cost, the
   same question encoded by `SentenceTransformer.encode` plus the FAISS search alone, and against
   iss-qa's own model call alone (the ONNX session with tokenising and pooling, plus the search);
   they alternate question by question. The question-embedding cache is off for this (every question
   is encoded); a second row asks the same questions again with the cache on. Raw throughput in
   batches of 32 questions is the 16-client baseline.
2. Index build: passages per second of the whole build (read, chunk, embed passages and sentences,
   write) against a raw `SentenceTransformer.encode` of the same passages; alternating rounds.
3. Over HTTP on 127.0.0.1, the production server (`issqa serve`, gunicorn) with 1, 4 and 16
   concurrent clients asking questions (cache off): p50/p95/p99, questions per second, errors, and
   the CPU each answered question cost the server and the load generator (this process's client
   threads, on the same cores), for each server layout given by `--layouts` (workers x model
   threads); its cold start (process start to the first answer, index already built) and its memory
   (each worker's resident set after the runs, the peak summed over processes, and the proportional
   share that counts shared pages once). With `--http-cached`, the cache is on and the clients ask 20
   questions over and over: what a request costs the server without the model.

The corpus is the first `--passages` SQuAD v1.1 dev passages written as documents, and the questions
are theirs.

    nice .venv/bin/python bench/perf.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask

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


@contextlib.contextmanager
def sample_app(source: Path, passages: int, questions: int) -> Iterator[tuple[Flask, list[str]]]:
    """An app over the first `passages` passages, indexed in a temporary folder, with `questions` of
    their questions spread evenly (cache and rate limit as configured, the limit off)."""
    with tempfile.TemporaryDirectory() as tmp:
        asked = write_corpus(source, Path(tmp) / "documents", passages)
        asked = asked[:: max(1, len(asked) // questions)][:questions]
        app = create_app(
            {"DOCUMENTS": Path(tmp) / "documents", "INDEX": Path(tmp) / "index", "RATE_LIMIT": "off"}
        )
        get_engine(app).build()
        yield app, asked


def in_process(app, questions: list[str], raw_model) -> dict[str, dict[int, float]]:
    engine = get_engine(app)
    index = engine.index()
    embedder = engine.embedder
    vectors = index._faiss  # the raw baseline's search: FAISS itself
    cache_size = embedder.cache_size
    embedder.cache_size = 0
    for q in questions[:10]:  # warm every path
        engine.ask(q)
        vectors.search(raw_model.encode([q], normalize_embeddings=True), 10)
        vectors.search(embedder._forward([q]), 10)
    raw, model, full = [], [], []
    for q in questions:
        t = time.perf_counter()
        v = raw_model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        vectors.search(v.astype(np.float32), 10)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()  # iss-qa's model alone: tokenise, run, pool (onnxruntime by default)
        vectors.search(embedder._forward([q]), 10)
        model.append(time.perf_counter() - t)
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
    t, cpu = time.perf_counter(), time.process_time()
    for b in range(0, len(questions), 32):
        batch = raw_model.encode(questions[b : b + 32], batch_size=32, normalize_embeddings=True)
        vectors.search(batch.astype(np.float32), 10)
    batched_qps = len(questions) / (time.perf_counter() - t)
    batched_cpu_ms = (time.process_time() - cpu) * 1000 / len(questions)
    return {
        "raw": pct(raw),
        "model": pct(model),
        "ask": pct(full),
        "ask_cached": pct(cached),
        "raw_qps": {1: len(raw) / sum(raw), 32: batched_qps},
        "raw_cpu_ms_32": batched_cpu_ms,
    }


def build_speed(app, documents: Path, rounds: int, raw_model) -> tuple[float, float, int]:
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
            raw_model.encode(inputs, batch_size=embedder.batch_size, normalize_embeddings=True)
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            build_index(documents, Path(tmp) / "index", embedder, full=True)
            full.append(time.perf_counter() - t)
    return len(inputs) / min(raw), len(inputs) / min(full), len(inputs)


def server_pids(root: int) -> list[int]:
    """The server's processes: the master and its workers."""
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return [root] + [int(p) for p in out]


def process_memory(root: int) -> tuple[float, float, int, list[float]]:
    """Peak RSS summed over the server's processes, their PSS now (MiB), how many, and each worker's RSS now."""
    pids = server_pids(root)
    hwm = pss = 0.0
    workers: list[float] = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
                if line.startswith("VmRSS:") and pid != root:
                    workers.append(int(line.split()[1]) / 1024)
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            pass
    return hwm, pss, len(pids), workers


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
        pids = server_pids(root)
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(1.0)
        if sum(cpu_seconds(p) for p in pids) - before < 0.05:
            return


def ask_http(conn: http.client.HTTPConnection, question: str) -> bool:
    """Ask over `conn`; True when the answer came back (200)."""
    conn.request(
        "POST",
        "/api/ask",
        body=json.dumps({"question": question}),
        headers={"Content-Type": "application/json"},
    )
    response = conn.getresponse()
    response.read()
    return response.status == 200


def http_run(
    documents: Path,
    index: Path,
    questions: list[str],
    layout: str,
    seconds: float,
    clients: list[int],
    cached: bool = False,
):
    workers, torch_threads = layout.split("x")
    env = {
        "ISSQA_RATE_LIMIT": "off",
        "ISSQA_EMBED_CACHE": "1024" if cached else "0",
        "ISSQA_ACCESS_LOG": "false",
    }
    if cached:  # a few questions over and over: after each worker's first time, no model runs
        questions = questions[:20]
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
                answered = ask_http(conn, questions[0])
                conn.close()
                if answered:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        result["cold_start_s"] = time.perf_counter() - started
        wait_idle(server.process.pid)
        for n in clients:
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def client(
                seed: int,
                deadline: float = deadline,
                latencies: list[float] = latencies,
                errors: list[str] = errors,
                lock=lock,
            ) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                i = seed
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    try:
                        ok = ask_http(conn, questions[i % len(questions)])
                    except OSError as exc:  # a dropped connection counts, and the client reconnects
                        ok, failure = False, type(exc).__name__
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    else:
                        failure = "status"
                    with lock:
                        if ok:
                            latencies.append(time.perf_counter() - t)
                        else:
                            errors.append(failure)
                    i += 7
                conn.close()

            threads = [threading.Thread(target=client, args=(i * 101,)) for i in range(n)]
            serving = server_pids(server.process.pid)
            server_cpu, client_cpu = sum(map(cpu_seconds, serving)), time.process_time()
            t0 = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            answered = max(len(latencies), 1)
            result[n] = {
                "pct": pct(latencies),
                "qps": len(latencies) / (time.monotonic() - t0),
                "errors": len(errors),
                # CPU per answered question, in ms: the server's processes, and this one's client threads
                # (they share the cores; the raw baseline pays for neither HTTP side).
                "server_ms": (sum(map(cpu_seconds, serving)) - server_cpu) * 1000 / answered,
                "client_ms": (time.process_time() - client_cpu) * 1000 / answered,
            }
        result["memory"] = process_memory(server.process.pid)
    return result


RAW_COLD = (
    "import os, sys; os.environ['HF_HUB_OFFLINE'] = '1'; "
    "from sentence_transformers import SentenceTransformer; "
    "SentenceTransformer(sys.argv[1], device='cpu').encode(['x'])"
)


def raw_cold_start(model: str) -> float:
    """A bare Python process that loads `model` (a folder) and encodes one question: cold start's floor."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", RAW_COLD, model], check=True, capture_output=True)
    return time.perf_counter() - t


def raw_model(model: str, threads: int):
    """The raw baseline: sentence-transformers itself on `model`, on torch with `threads` threads."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    return SentenceTransformer(model, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path, help="A folder with passages.jsonl and questions.jsonl.")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="Build rounds (best of each).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Per client count over HTTP.")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument(
        "--layouts", default="default", help="Server layouts WORKERSxMODEL_THREADS, comma-separated."
    )
    parser.add_argument(
        "--threads", type=int, help="iss-qa's model threads in this process (default: the usable cores)."
    )
    parser.add_argument("--raw-threads", type=int, default=2, help="Torch threads of the raw baseline.")
    parser.add_argument(
        "--build-corpus", type=Path, help="Documents folder for the build part (default: the SQuAD passages)."
    )
    parser.add_argument("--skip", default="", help="Parts to skip: inprocess,build,http")
    parser.add_argument(
        "--http-cached",
        action="store_true",
        help="Over HTTP, the question cache on and 20 questions repeated.",
    )
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    clients = [int(c) for c in args.clients.split(",")]
    if not 0 < args.seconds <= 60 or max(clients) > 64:
        parser.error("keep it bounded: --seconds at most 60, at most 64 clients")
    from service.embedding import resolve_model, set_threads
    from service.serving import plan

    default = plan()
    threads = args.threads or default.cores  # a lone question may use every idle core
    set_threads(threads)
    layouts = [
        f"{default.workers}x{default.torch_threads}" if x == "default" else x for x in args.layouts.split(",")
    ]

    tmp = Path(tempfile.mkdtemp(prefix="issqa-perf-"))
    try:
        documents = tmp / "documents"
        questions = write_corpus(args.benchmark, documents, args.passages)
        questions = questions[:: max(1, len(questions) // args.questions)][: args.questions]
        app = create_app({"DOCUMENTS": documents, "INDEX": tmp / "index"})
        engine = get_engine(app)
        report = engine.build()
        model = resolve_model(engine.settings.model)  # ISSQA_MODEL, as the servers read it
        raw = raw_model(model, args.raw_threads)
        print(
            f"corpus: {len(list(documents.iterdir()))} documents, {report.passages} passages; "
            f"{len(questions)} questions; {default.cores} cores; iss-qa: {engine.settings.backend} backend, "
            f"{threads} model threads in process; raw: sentence-transformers, {args.raw_threads} torch threads"
        )
        raw_qps = None
        if "inprocess" not in skip:
            figures = in_process(app, questions, raw)
            raw_p50, model_p50 = figures["raw"][50], figures["model"][50]
            raw_qps = figures["raw_qps"]
            print("\n1. In process, warm (cache off unless said)")
            print(f"   raw: encode + FAISS search  {fmt(figures['raw'])}")
            print(
                f"   iss-qa's model + FAISS      {fmt(figures['model'])}   ratio at p50 {model_p50 / raw_p50:.2f}x"
            )
            print(
                f"   Engine.ask                  {fmt(figures['ask'])}   ratio at p50 {figures['ask'][50] / raw_p50:.2f}x"
                f"; against iss-qa's model + FAISS {figures['ask'][50] / model_p50:.2f}x"
            )
            print(
                f"   Engine.ask, cached question {fmt(figures['ask_cached'])}   ratio at p50 {figures['ask_cached'][50] / raw_p50:.2f}x"
            )
            print(
                f"   raw throughput: one at a time {raw_qps[1]:.1f} questions/s, "
                f"in batches of 32 {raw_qps[32]:.1f} questions/s ({figures['raw_cpu_ms_32']:.2f} ms of CPU each)"
            )
        if "build" not in skip:
            raw_rate, full_rate, n = build_speed(app, args.build_corpus or documents, args.rounds, raw)
            print(
                f"\n2. Index build, {args.build_corpus or 'the same documents'}: {n} passages, best of {args.rounds}"
            )
            print(f"   raw SentenceTransformer.encode  {raw_rate:6.1f} passages/s")
            print(
                f"   issqa build (whole pipeline)    {full_rate:6.1f} passages/s   ratio {full_rate / raw_rate:.2f}x"
            )
        if "http" not in skip:
            cache = "cache on, 20 questions repeated" if args.http_cached else "cache off"
            print(f"\n3. Over HTTP on 127.0.0.1, {args.seconds:.0f} s per client count, {cache}")
            print(
                f"   raw cold start (python, load the model, encode one question): {raw_cold_start(model):.1f} s"
            )
            for layout in layouts:
                r = http_run(
                    documents, tmp / "index", questions, layout, args.seconds, clients, args.http_cached
                )
                w, t = layout.split("x")
                hwm, pss, procs, workers = r["memory"]
                print(
                    f"   server: {w} workers x {t} model threads; cold start to first answer {r['cold_start_s']:.1f} s; "
                    f"memory: worker RSS {', '.join(f'{m:,.0f}' for m in workers)} MiB; "
                    f"peak RSS {hwm:,.0f} MiB over {procs} processes, PSS {pss:,.0f} MiB"
                )
                for n in clients:
                    ratio = ""
                    if raw_qps and n == 1:
                        ratio = f"   {r[n]['qps'] / raw_qps[1]:.2f}x raw one at a time"
                    elif raw_qps and n == 16:
                        ratio = f"   {r[n]['qps'] / raw_qps[32]:.2f}x raw in batches of 32"
                    print(
                        f"   {n:2d} clients: {fmt(r[n]['pct'])}   {r[n]['qps']:5.1f} questions/s, "
                        f"{r[n]['errors']} errors{ratio}"
                    )
                    print(
                        f"               CPU per question: server {r[n]['server_ms']:.2f} ms, "
                        f"load generator {r[n]['client_ms']:.2f} ms"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
