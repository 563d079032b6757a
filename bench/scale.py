"""iss-qa at a million passages: the index type chosen by size, its recall, query time, size and build time.

Passages are real sentences recombined: sentences of ../shared/corpora/wikipedia-space and of the
SQuAD passages, three at a time, drawn at random. Embedding a million passages with the model is out
of reach on two cores, so each synthetic passage's vector is the normalised mean of its sentences'
real all-MiniLM-L6-v2 vectors plus a little noise (what mean pooling roughly does); the questions are
real SQuAD questions embedded by the model. The index is written by the real code
(`store.write_index`: the vector index `store.new_vector_index` chooses, the SQLite passage store with
each passage's three sentences and their real vectors, and the Tantivy keyword folder), then loaded by
`store.Index` as the server loads it (memory-mapped), and every figure is printed beside exact search
over the same vectors, from the same run. Keyword search is measured beside the FTS5 table the store
used to hold (`porter unicode61` over title and body, built here into a file of its own): BM25 top 50
with every content word of the question, and with only the rarest words within KEYWORD_BUDGET
passages, the budget FTS5 needed. Last, whole questions in process: `query.analyse` (the model
encodes the question), `retrieval.search` and `answer.compose`, as `Engine.ask` runs them.

    nice .venv/bin/python bench/scale.py --passages 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402  (after the path, like the other bench scripts)

from service import store  # noqa: E402
from service.answer import compose  # noqa: E402
from service.chunking import sentences  # noqa: E402
from service.documents import Document  # noqa: E402
from service.embedding import load_embedder, model_threads  # noqa: E402
from service.engine import DEFAULTS  # noqa: E402
from service.query import analyse  # noqa: E402
from service.retrieval import candidates, gather, ordered  # noqa: E402
from service.text import keyword_query, keyword_tokens  # noqa: E402

SHARED = ROOT.parent / "shared"
PER_PASSAGE = 3
PER_DOCUMENT = 10
# Passages a budgeted keyword query may make BM25 score: the rarest words are kept while their
# passage counts add up to at most this (what the service did with FTS5 before Tantivy).
KEYWORD_BUDGET = 50_000


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

    # The real build: documents, passages with their sentences, and vectors through store.write_index.
    shutil.rmtree(args.folder, ignore_errors=True)
    docs, passages, held = [], [], []
    for d in range(0, n, PER_DOCUMENT):
        body, spans = "", []
        for i in range(d, min(n, d + PER_DOCUMENT)):
            at, sents = 0, []
            for j in combos[i]:
                sents.append(store.Sentence(at, at + len(pool[j]), base[j]))
                at += len(pool[j]) + 1
            text = " ".join(pool[j] for j in combos[i])
            spans.append((len(body), len(body) + len(text)))
            held.append(sents)
            body += text + "\n\n"
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
    add_vectors, write_keywords = store.add_vectors, store.write_keywords

    def timed(name, function):  # a part's share of the build
        def run(*a, **k):
            t = time.perf_counter()
            function(*a, **k)
            timings[name] = time.perf_counter() - t

        return run

    store.add_vectors = timed("vectors", add_vectors)
    store.write_keywords = timed("keywords", write_keywords)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    store.write_index(args.folder, manifest, store.Batch(docs, passages, vectors, held))
    build = time.perf_counter() - started
    faiss.omp_set_num_threads(1)
    store.add_vectors, store.write_keywords = add_vectors, write_keywords
    print(
        f"build (store.write_index, {os.cpu_count()} threads): {build:.0f} s, of which the vector index "
        f"{timings['vectors']:.0f} s ({n / timings['vectors']:,.0f} vectors/s) and the keyword index "
        f"(Tantivy) {timings['keywords']:.0f} s ({n / timings['keywords']:,.0f} passages/s)"
    )

    # The baseline: the FTS5 table the passage store held before Tantivy, in a file of its own.
    fts_file = args.folder.with_name(args.folder.name + "-fts5.sqlite3")
    fts_file.unlink(missing_ok=True)
    started = time.perf_counter()
    titles = {doc.id: doc.title for doc in docs}
    db = sqlite3.connect(fts_file)
    with db:
        db.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(title, body, tokenize = 'porter unicode61')")
        db.executemany(
            "INSERT INTO passages_fts (rowid, title, body) VALUES (?, ?, ?)",
            ((p.id, titles[p.document_id], p.text) for p in passages),
        )
    db.close()
    print(f"baseline FTS5 table (porter unicode61, title and body): {time.perf_counter() - started:.0f} s")
    del docs, passages, held, combos, titles, vectors
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
        fts_file.unlink(missing_ok=True)


def size_mib(path: Path) -> float:
    """A file's size, or a folder's files' together, in MiB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def budgeted(words: tuple[str, ...], counts: dict[str, int]) -> tuple[str, ...]:
    """The rarest of `words` while their passage counts add up to KEYWORD_BUDGET (always the rarest one)."""
    if sum(counts.values()) <= KEYWORD_BUDGET:
        return words
    kept: list[str] = []
    total = 0
    for word in sorted(words, key=lambda w: (counts[w], w)):
        if kept and total + counts[word] > KEYWORD_BUDGET:
            break
        kept.append(word)
        total += counts[word]
    return tuple(sorted(kept))


class Fts5:
    """The former keyword index: an FTS5 table with BM25, and its term table for the budget."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        self.db.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, 'passages_fts', 'row')")
        self.stem = __import__("Stemmer").Stemmer("porter").stemWord

    def search(self, words: tuple[str, ...], k: int) -> list[int]:
        query = " OR ".join(f'"{w}"' for w in words)
        rows = self.db.execute(
            "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? ORDER BY bm25(passages_fts) LIMIT ?",
            (query, k),
        )
        return [row[0] for row in rows]

    def counts(self, words: tuple[str, ...]) -> dict[str, int]:
        terms = {w: self.stem(w) for w in words}
        marks = ",".join("?" * len(terms))
        found = dict(
            self.db.execute(f"SELECT term, doc FROM temp.vocab WHERE term IN ({marks})", list(terms.values()))
        )
        return {w: int(found.get(t, 0)) for w, t in terms.items()}


def tantivy_counts(index: store.Index, words: tuple[str, ...]) -> dict[str, int]:
    """Passages per word from Tantivy's own term statistics."""
    searcher, _ = index._keywords
    return {w: sum(searcher.doc_freq("text", t) for t in keyword_tokens(w)) for w in words}


def keyword_rows(
    name: str, search, counts, queries: list[tuple[str, ...]]
) -> tuple[dict[tuple[str, ...], list[int]], str]:
    """Time one keyword index over every query, with every word and budgeted; its two table rows."""
    full, times, cut, cut_times, overlap = {}, [], [], [], []
    for words in queries:
        t = time.perf_counter()
        full[words] = search(words, 50)
        times.append(time.perf_counter() - t)
    for words in queries:
        t = time.perf_counter()
        hits = search(budgeted(words, counts(words)), 50)  # the counts' lookup is timed too
        cut_times.append(time.perf_counter() - t)
        cut.append(hits)
        overlap.append(len(set(full[words][:10]) & set(hits[:10])) / max(len(full[words][:10]), 1))
    ratio = np.median(cut_times) / np.median(times)
    rows = (
        f"| {name}, every content word | {percentiles(times)} | 1.000 |\n"
        f"| {name}, rarest words within {KEYWORD_BUDGET:,} passages | {percentiles(cut_times)} "
        f"({ratio:.3f}x every word) | {np.mean(overlap):.3f} |"
    )
    return full, rows


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
    keyword_queries = [q for q in (keyword_query(question) for question in picked) if q]
    manifest = store.read_manifest(folder)
    vector_file = folder / manifest.files["vectors"]
    passage_file = folder / manifest.files["passages"]
    keyword_folder = folder / manifest.files["keywords"]
    fts_file = folder.with_name(folder.name + "-fts5.sqlite3")
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
        f"on disk: vectors {size_mib(vector_file):,.0f} MiB, passage store {size_mib(passage_file):,.0f} MiB "
        f"(with the sentences' fp16 vectors), keyword index (Tantivy) {size_mib(keyword_folder):,.0f} MiB "
        f"in {index._keywords[0].num_segments} segments; the former FTS5 table alone {size_mib(fts_file):,.0f} MiB"
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
    lookups, stored = [], []
    for _ in picked:
        ids = [int(x) for x in rng.integers(0, n, 50)]
        t = time.perf_counter()
        index.passages(ids)
        index.published(ids)
        lookups.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.vectors(ids)
        stored.append(time.perf_counter() - t)
    print(f"\npassage store: 50 passages with their sentences and dates by id {percentiles(lookups)}")
    print(f"vector index: 50 stored vectors by id (reconstruct) {percentiles(stored)}")

    # Keyword search, BM25 top 50: the former FTS5 table first, then the Tantivy folder the index uses.
    fts = Fts5(fts_file)
    print(f"\nkeyword search, BM25 top 50 over {len(keyword_queries)} questions' content words (1 thread):\n")
    print("| keyword index, query | per query | top 10 shared with every word's |")
    print("|---|---|---|")
    fts_full, rows = keyword_rows("FTS5 (before)", fts.search, fts.counts, keyword_queries)
    print(rows)

    def tantivy_search(words: tuple[str, ...], k: int) -> list[int]:
        return [h.passage_id for h in index.keyword_search(words, k)]

    tantivy_full, rows = keyword_rows(
        "Tantivy (now)", tantivy_search, lambda words: tantivy_counts(index, words), keyword_queries
    )
    print(rows)
    shared = [len(set(fts_full[w][:10]) & set(tantivy_full[w][:10])) / 10 for w in keyword_queries]
    print(
        f"\ntop 10 of Tantivy's every-word query shared with FTS5's every-word query: {np.mean(shared):.3f} "
        f"(tied BM25 scores abound in a corpus of recombined sentences: "
        f"top 50 shared {np.mean([len(set(fts_full[w]) & set(tantivy_full[w])) / 50 for w in keyword_queries]):.3f})"
    )
    after = memory()
    print(
        f"memory after all searches and lookups: private {after['RssAnon'] - before['RssAnon']:+,} MiB, "
        f"file-backed (shared page cache) {after['RssFile'] - before['RssFile']:+,} MiB "
        f"(after the vector searches only: {searched['RssFile'] - before['RssFile']:+,} MiB)"
    )
    del fts

    # Whole questions in process, as Engine.ask runs them: the keyword half searched while the model
    # encodes (`retrieval.gather`), then the dense half, stage two and the answer. Every other question
    # runs the same steps one after another instead (as before the keyword search ran beside the
    # model): other questions, so that neither way finds the passages the other just read.
    embedder = load_embedder()
    embedder.cache_size = 0
    k, mode, threshold = int(DEFAULTS["TOP_K"]), DEFAULTS["RETRIEVAL"], float(DEFAULTS["MIN_CONFIDENCE"])
    for question in ("Which river flows through the city?", "Who built the first rocket?"):
        query, found = gather(index, embedder, question)
        compose(query, ordered(index, query, found, k, mode), threshold)
    parts: dict[str, list[float]] = {
        "retrieval.gather (encode, keyword beside it, dense)": [],
        "ordered + compose": [],
    }
    total, serial = [], []
    for i, question in enumerate(picked):
        t0 = time.perf_counter()
        if i % 2:
            query = analyse(index, embedder, question)
            found = candidates(index, query)  # the keyword half searched here, after the model
            compose(query, ordered(index, query, found, k, mode), threshold)
            serial.append(time.perf_counter() - t0)
            continue
        query, found = gather(index, embedder, question)
        t1 = time.perf_counter()
        compose(query, ordered(index, query, found, k, mode), threshold)
        t2 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1), strict=True):
            parts[name].append(seconds)
        total.append(t2 - t0)
    print(
        f"\na question end to end in process ({len(total)} SQuAD questions, {embedder.backend} encoder, "
        f"{model_threads()} model threads):"
    )
    print(f"  total {percentiles(total)}")
    for name, values in parts.items():
        print(f"  {name} {percentiles(values)}")
    ratio = np.percentile(total, 50) / np.percentile(serial, 50)
    print(
        f"  {len(serial)} other questions, the same steps one after another: total {percentiles(serial)} "
        f"(the total above at p50: {ratio:.3f}x this)"
    )


if __name__ == "__main__":
    main()
