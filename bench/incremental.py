"""What an incremental rebuild costs next to a full one, on a corpus of a few thousand real documents.

    python bench/incremental.py [--documents 2000]

The corpus is real text from ../shared: every SQuAD dev passage (v1.1 and v2.0, duplicates dropped)
as one document, then every paragraph of the Wikipedia articles as one. The script builds the index from scratch, then adds one
document, changes one and removes one, rebuilding incrementally after each, and prints each
rebuild's whole cost as a share of the full build's embedding time (the issue's target: under 5%).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from service.embedding import load_embedder
from service.indexing import build_index

SHARED = Path(__file__).resolve().parents[2] / "shared"


def write_corpus(folder: Path, count: int) -> int:
    """At least `count` documents of real text in `folder`; returns how many were written."""
    folder.mkdir(parents=True)
    seen: set[str] = set()
    n = 0
    for name in ("squad-v1.1-dev", "squad-v2.0-dev"):
        with (SHARED / "benchmarks" / name / "passages.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                passage = json.loads(line)
                if passage["text"] in seen:
                    continue
                seen.add(passage["text"])
                title = passage["title"].replace("_", " ")
                (folder / f"{n:05d}.txt").write_text(f"{title}\n\n{passage['text']}\n", encoding="utf-8")
                n += 1
    # Each paragraph of the Wikipedia articles as a short article of its own, under its article's title.
    for article in sorted((SHARED / "corpora" / "wikipedia-space").glob("*.txt")):
        title = article.stem.replace("_", " ")
        paragraphs = [p.strip() for p in article.read_text(encoding="utf-8").splitlines()]
        for i, paragraph in enumerate(p for p in paragraphs if len(p.split()) >= 12):
            (folder / f"{article.stem}-{i:03d}.txt").write_text(f"{title}\n\n{paragraph}\n", encoding="utf-8")
            n += 1
    if n < count:
        raise SystemExit(f"only {n} documents of text in {SHARED}; asked for {count}")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=2000)
    args = parser.parse_args()
    embedder = load_embedder()
    embedder.encode(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "documents", Path(tmp) / "index"
        count = write_corpus(docs, args.documents)
        # The full build's embedding alone, timed by the progress callback: from the first slice
        # handed to the model to the last one back.
        marks: list[float] = []
        full = build_index(
            docs, index, embedder, full=True, progress=lambda done, total: marks.append(time.perf_counter())
        )
        embed_seconds = marks[-1] - marks[0] if len(marks) > 1 else full.seconds
        print(f"corpus: {count} documents, {full.passages} passages")
        print(
            f"full build: {full.seconds:.1f} s in all, {embed_seconds:.1f} s embedding "
            f"({full.passages / embed_seconds:.1f} passages/s)"
        )

        steps = []
        new = docs / "zz-new-article.txt"
        shutil.copy(
            Path(__file__).resolve().parents[1]
            / "documents"
            / sorted(p.name for p in (Path(__file__).resolve().parents[1] / "documents").glob("*.txt"))[0],
            new,
        )
        steps.append(("add one document", None))
        target = docs / "00010.txt"
        steps.append(
            ("change one document", lambda: target.write_text(target.read_text() + "\nA late correction.\n"))
        )
        steps.append(("remove one document", lambda: (docs / "00020.txt").unlink()))
        print(f"{'step':<22} {'seconds':>8} {'embedded':>9} {'share of full embedding':>24}")
        for label, change in steps:
            if change:
                change()
            started = time.perf_counter()
            report = build_index(docs, index, embedder)
            seconds = time.perf_counter() - started
            print(f"{label:<22} {seconds:>8.2f} {report.embedded:>9} {seconds / embed_seconds:>23.1%}")


if __name__ == "__main__":
    main()
