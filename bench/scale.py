"""iss-qa at a million passages: the index type chosen by size, its recall, query time, size and build time.

Passages are real sentences recombined: sentences of ../shared/corpora/wikipedia-space and of the
SQuAD passages, three at a time, drawn at random. Embedding a million passages with the model is out
of reach on two cores, so each synthetic passage's vector is the normalised mean of its sentences'
real all-MiniLM-L6-v2 vectors plus a little noise (what mean pooling roughly does); the questions are
real SQuAD questions embedded by the model. The index is written by the real code
(`store.write_index`: the vector index `store.new_vector_index` chooses, and the SQLite passage store
with its FTS5 table), then loaded by `store.Index` as the server loads it (memory-mapped), and every
figure is printed beside exact search over the same vectors, from the same run.

    nice .venv/bin/python bench/scale.py --passages 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402  (after the path, like the other bench scripts)

from service import store  # noqa: E402
from service.chunking import sentences  # noqa: E402
from service.documents import Document  # noqa: E402
from service.embedding import load_embedder  # noqa: E402
from service.text import KEYWORD_BUDGET, keyword_query  # noqa: E402

SHARED = ROOT.parent / "shared"
PER_PASSAGE = 3
PER_DOCUMENT = 10


def memory() -> dict[str, int]:
    """This process's resident memory in MiB: anonymous (private) and file-backed (page cache, shared)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "RssShmem", "VmHWM"):
            fields[name] = int(value.split()[0]) // 1024
    return fields


def real_sentences(limit: int) -> tuple[list[str], list[int]]:
    """Up to `limit` distinct sentences, with the number of the article (or SQuAD title) each comes from."""
    texts = [
        p.read_text(encoding="utf-8") for p in sorted((SHARED / "corpora/wikipedia-space").glob("*.txt"))
    ]
    squad = SHARED / "benchmarks/squad-v1.1-dev/passages.jsonl"
    titles: dict[str, list[str]] = {}
    for line in squad.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        titles.setdefault(row["title"], []).append(row["text"])
    texts += ["\n\n".join(group) for group in titles.values()]
    found: dict[str, int] = {}
    for source, text in enumerate(texts):
        for paragraph in text.split("\n\n"):
            for a, b in sentences(paragraph):
                sentence = " ".join(paragraph[a:b].split())
                if 40 <= len(sentence) <= 300:
                    found.setdefault(sentence, source)
    chosen = list(np.random.default_rng(1).permutation(list(found))[:limit])
    return chosen, [found[s] for s in chosen]


def percentiles(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return "p50 {:.2f} ms  p95 {:.2f} ms  p99 {:.2f} ms".format(*np.percentile(ms, [50, 95, 99]))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--sentences", type=int, default=4000, help="Real sentences embedded by the model.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/issqa-scale"))
    parser.add_argument("--nprobe", default="16,32,64,128", help="IVF settings to measure recall for.")
    parser.add_argument("--keep", action="store_true", help="Keep the index folder afterwards.")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process's part
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.nprobe)
        return
    faiss.omp_set_num_threads(1)  # as in a server worker with one torch thread: per-query figures
    rng = np.random.default_rng(0)
    n = args.passages

    started = time.perf_counter()
    embedder = load_embedder()
    pool, sources = real_sentences(args.sentences)
    cache = args.folder.with_name(args.folder.name + f"-sentences-{len(pool)}.npy")
    if cache.exists():
        base = np.load(cache)
    else:
        base = embedder.encode(pool)
        np.save(cache, base)
    questions = [
        json.loads(line)["question"]
        for line in (SHARED / "benchmarks/squad-v1.1-dev/questions.jsonl").read_text().splitlines()
    ]
    picked = rng.choice(len(questions), args.queries, replace=False)
    queries = embedder.encode([questions[i] for i in picked])
    print(
        f"real sentences embedded: {len(pool)}, questions: {len(queries)} ({time.perf_counter() - started:.0f} s)"
    )

    started = time.perf_counter()
    # Three sentences of one article per passage, like a real passage: topics cluster as in real data.
    by_source: dict[int, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(source, []).append(i)
    groups = [np.array(g) for g in by_source.values() if len(g) >= PER_PASSAGE]
    lengths = np.array([len(g) for g in groups])
    chosen = rng.integers(0, len(groups), n)
    offsets = (rng.random((n, PER_PASSAGE)) * lengths[chosen, None]).astype(np.int64)
    combos = np.empty((n, PER_PASSAGE), dtype=np.int64)
    for g, members in enumerate(groups):
        rows = chosen == g
        combos[rows] = members[offsets[rows]]
    vectors = np.empty((n, base.shape[1]), dtype=np.float32)
    for lo in range(0, n, 100_000):
        part = base[combos[lo : lo + 100_000]].mean(axis=1)
        part += rng.standard_normal(part.shape, dtype=np.float32) * 0.005
        vectors[lo : lo + 100_000] = part / np.linalg.norm(part, axis=1, keepdims=True)
    print(f"synthetic passages: {n:,} ({time.perf_counter() - started:.0f} s)")

    # Exact search, the baseline and the ground truth (batched for the truth, one query at a time for time).
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    _, truth = exact.search(queries, 10)
    faiss.omp_set_num_threads(1)
    exact_times = []
    for q in queries[:30]:
        t = time.perf_counter()
        exact.search(q.reshape(1, -1), 50)
        exact_times.append(time.perf_counter() - t)
    del exact

    # The real build: documents, passages and vectors through store.write_index.
    shutil.rmtree(args.folder, ignore_errors=True)
    docs, passages = [], []
    for d in range(0, n, PER_DOCUMENT):
        texts = [" ".join(pool[j] for j in combos[i]) for i in range(d, min(n, d + PER_DOCUMENT))]
        body, start, spans = "", 0, []
        for text in texts:
            spans.append((start, start + len(text)))
            body += text + "\n\n"
            start = len(body)
        doc = Document(
            f"doc-{d // PER_DOCUMENT}",
            f"doc-{d // PER_DOCUMENT}.txt",
            f"Article {d // PER_DOCUMENT}",
            None,
            None,
            None,
            body,
            "0" * 64,
        )
        docs.append(doc)
        passages += [store.Passage(d + i, doc.id, a, b, body[a:b]) for i, (a, b) in enumerate(spans)]
    manifest = store.Manifest(
        model="all-MiniLM-L6-v2",
        dimensions=vectors.shape[1],
        chunking={},
        documents={},
        skipped={},
        passages=n,
        built_at="",
        build_seconds=0.0,
        versions={},
    )
    timings: dict[str, float] = {}
    add_vectors = store.add_vectors

    def timed_add(*a, **k):  # the vector index's share of the build
        t = time.perf_counter()
        add_vectors(*a, **k)
        timings["vectors"] = time.perf_counter() - t

    store.add_vectors = timed_add
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    store.write_index(args.folder, manifest, store.Batch(docs, passages, vectors, [[] for _ in passages]))
    build = time.perf_counter() - started
    faiss.omp_set_num_threads(1)
    store.add_vectors = add_vectors
    del docs, passages, combos
    index_files = None
    print(
        f"build (store.write_index, {os.cpu_count()} threads): {build:.0f} s, of which the vector index "
        f"{timings['vectors']:.0f} s ({n / timings['vectors']:,.0f} vectors/s)"
    )

    del vectors, index_files
    np.savez(
        args.folder.with_name(args.folder.name + "-queries.npz"),
        queries=queries,
        truth=truth,
        exact=np.array(exact_times),
        picked=picked,
    )
    # A fresh process loads and searches, as a server worker would: this one's heap still holds the build.
    subprocess.run(
        [sys.executable, __file__, "--measure", str(args.folder), "--nprobe", args.nprobe], check=True
    )
    if not args.keep:
        shutil.rmtree(args.folder, ignore_errors=True)


def measure(folder: Path, nprobe_list: str) -> None:
    """Load the index as the server does and report its type, size, memory, recall and query times."""
    faiss.omp_set_num_threads(1)
    saved = np.load(folder.with_name(folder.name + "-queries.npz"))
    queries, truth, exact_times = saved["queries"], saved["truth"], list(saved["exact"])
    questions = [
        json.loads(line)["question"]
        for line in (SHARED / "benchmarks/squad-v1.1-dev/questions.jsonl").read_text().splitlines()
    ]
    picked = [questions[i] for i in saved["picked"]]
    keyword_queries = [keyword_query(q) for q in picked]
    manifest = store.read_manifest(folder)
    vector_file = folder / manifest.files["vectors"]
    passage_file = folder / manifest.files["passages"]
    before = memory()
    index = store.Index(folder)
    loaded = memory()
    n = index.size
    kind = type(index._faiss).__name__
    ivf = faiss.try_extract_index_ivf(index._faiss)
    print(
        f"index type chosen for {n:,} passages: {kind}"
        + (f" (nlist {ivf.nlist}, nprobe {ivf.nprobe})" if ivf is not None else "")
    )
    print(
        f"on disk: vectors {vector_file.stat().st_size / 2**20:,.0f} MiB, "
        f"passage store {passage_file.stat().st_size / 2**20:,.0f} MiB"
    )
    print(
        f"memory of a fresh process after loading the index: private {loaded['RssAnon'] - before['RssAnon']:+,} MiB, "
        f"file-backed {loaded['RssFile'] - before['RssFile']:+,} MiB"
    )

    print("\n| search | recall@10 vs exact | per query (1 thread) |")
    print("|---|---|---|")
    print(f"| exact (IndexFlatIP), baseline | 1.000 | {percentiles(exact_times)} |")
    default = ivf.nprobe if ivf is not None else None
    for nprobe in [int(x) for x in nprobe_list.split(",")] if ivf is not None else [None]:
        if ivf is not None:
            ivf.nprobe = nprobe
        found, times = [], []
        for q in queries:
            t = time.perf_counter()
            hits = index.search(q, 50)
            times.append(time.perf_counter() - t)
            found.append([h.passage_id for h in hits[:10]])
        label = f"{kind} nprobe {nprobe}" + (" (default)" if nprobe == default else "")
        ratio = np.median(times) / np.median(exact_times)
        print(
            f"| {label} | {recall(np.array(found), truth):.3f} | {percentiles(times)} ({ratio:.3f}x exact) |"
        )
    if ivf is not None:
        ivf.nprobe = default
    searched = memory()

    # The passage store at this size: per-question lookups read pages, never the whole file.
    rng = np.random.default_rng(2)
    lookups, keyword, stored = [], [], []
    for query in keyword_queries:
        ids = [int(x) for x in rng.integers(0, n, 50)]
        t = time.perf_counter()
        index.passages(ids)
        index.published(ids)
        lookups.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.vectors(ids)
        stored.append(time.perf_counter() - t)
        if query:
            t = time.perf_counter()
            index.keyword_search(query, 50)
            keyword.append(time.perf_counter() - t)
    after = memory()
    print(f"\npassage store: 50 passages and their dates by id {percentiles(lookups)}")
    print(f"passage store: BM25 top 50, every content word (baseline) {percentiles(keyword)}")
    # What retrieval.candidates does at this size: only the rarest words, within KEYWORD_BUDGET
    # passages, counted with the index's own term statistics (the lookup is timed too).
    budgeted, overlap = [], []
    for question, query in zip(picked, keyword_queries, strict=True):
        if not query:
            continue
        full = [h.passage_id for h in index.keyword_search(query, 10)]
        t = time.perf_counter()
        hits = index.keyword_search(keyword_query(question, index.word_frequencies), 50)
        budgeted.append(time.perf_counter() - t)
        overlap.append(len(set(full) & {h.passage_id for h in hits[:10]}) / max(len(full), 1))
    ratio = np.median(budgeted) / np.median(keyword)
    print(
        f"passage store: BM25 top 50, rarest words within {KEYWORD_BUDGET:,} passages {percentiles(budgeted)} "
        f"({ratio:.3f}x baseline); top 10 shared with the baseline's: {np.mean(overlap):.3f}"
    )
    print(f"vector index: 50 stored vectors by id (reconstruct) {percentiles(stored)}")
    print(
        f"memory after all searches and lookups: private {after['RssAnon'] - before['RssAnon']:+,} MiB, "
        f"file-backed (shared page cache) {after['RssFile'] - before['RssFile']:+,} MiB "
        f"(after the vector searches only: {searched['RssFile'] - before['RssFile']:+,} MiB); the two files hold "
        f"{(vector_file.stat().st_size + passage_file.stat().st_size) / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
