"""What late chunking costs: passages/s of `encode_spans` (passage and sentence vectors) vs raw encode.

Both run on the same passages in the same process, alternating, so the printed ratio holds on a
noisy machine. The raw baseline is sentence-transformers' own `SentenceTransformer.encode` on torch;
`encode_spans` is the configured backend's (ONNX by default).

    .venv/bin/python bench/embed_speed.py ../shared/benchmarks/squad-v1.1-dev [--passages 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.chunking import ChunkSettings, chunk, sentences
from service.embedding import SentenceTransformerEmbedder, load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    embedder = load_embedder()
    texts = []
    for line in (args.folder / "passages.jsonl").read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        texts += [text[a:b] for a, b in chunk(text, embedder.count_tokens, ChunkSettings())]
        if len(texts) >= args.passages:
            break
    texts = texts[: args.passages]
    spans = [sentences(t) for t in texts]
    model = SentenceTransformerEmbedder(cache_size=0)._model  # the raw baseline: sentence-transformers
    raw, late = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
        raw.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedder.encode_spans(texts, spans)
        late.append(time.perf_counter() - started)
    n = len(texts)
    print(f"passages: {n}, sentences: {sum(map(len, spans))}, rounds: {args.rounds} (best of each)")
    print(f"raw SentenceTransformer.encode:      {n / min(raw):7.1f} passages/s")
    print(f"encode_spans (passages + sentences): {n / min(late):7.1f} passages/s")
    print(f"ratio encode_spans / raw: {min(raw) / min(late):.2f}x")


if __name__ == "__main__":
    main()
