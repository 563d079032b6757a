"""Where one answered question's time goes, end to end in process: HTTP layer, model, retrieval, answer.

Asks the questions of the first `--passages` SQuAD v1.1 dev passages through Flask's test client
(`POST /api/ask`: the WSGI app with every hook, no socket) under cProfile, cache off, and prints the
cumulative milliseconds per question of the steps that matter. The socket and gunicorn's share is
what bench/perf.py's one-client HTTP p50 adds on top of its in-process `Engine.ask`. cProfile follows
the asking thread only, so what a lone question runs beside the model on the helper thread (reading
the question's words, the keyword search) is not among the steps (docs/benchmarks.md, section 10).

    nice .venv/bin/python bench/profile_ask.py ../shared/benchmarks/squad-v1.1-dev
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from perf import sample_app  # noqa: E402

from service import get_engine  # noqa: E402

# (label, module file suffix, function name): cumulative time of each, per question.
STEPS = [
    ("whole request (WSGI app, hooks, JSON in and out)", "flask/app.py", "wsgi_app"),
    ("  Engine.ask", "service/engine.py", "ask"),
    ("    retrieval: gather (embed, search, signals)", "service/retrieval.py", "gather"),
    ("      the model: encode the question", "service/embedding.py", "encode"),
    ("        onnxruntime run", "service/embedding.py", "_run"),
    ("        tokenise", "~", "<method 'encode_batch' of 'tokenizers.Tokenizer' objects>"),
    ("      candidates (dense search, signals)", "service/retrieval.py", "candidates"),
    ("        dense: FAISS search", "service/store.py", "nearest"),
    ("        passages and sentence vectors read (held)", "service/store.py", "held"),
    ("    stems (of the sentences scored, mostly)", "service/text.py", "stems"),
    ("    answer: compose (sentence scoring, choosing, citations)", "service/answer.py", "compose"),
    ("      score_sentences", "service/answer.py", "score_sentences"),
    ("  JSON out (jsonify)", "flask/json/__init__.py", "jsonify"),
    ("  request JSON parsed (json_object)", "service/api.py", "json_object"),
    ("  request log line and metrics (after_request)", "service/observability.py", "finish"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--questions", type=int, default=150)
    args = parser.parse_args()
    with sample_app(args.benchmark, args.passages, args.questions) as (app, questions):
        engine = get_engine(app)
        engine.embedder.cache_size = 0
        client = app.test_client()
        for q in questions[:10]:
            client.post("/api/ask", json={"question": q})
        profile = cProfile.Profile()
        profile.enable()
        for q in questions:
            assert client.post("/api/ask", json={"question": q}).status_code == 200
        profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    print(
        f"{len(questions)} questions, {engine.settings.backend} backend; ms per question (cumulative, under cProfile)"
    )
    for label, file, name in STEPS:
        total = sum(
            value[3]
            for (path, _, function), value in stats.items()
            if function == name and path.endswith(file)
        )
        print(f"  {label:62s} {total * 1000 / len(questions):7.2f}")


if __name__ == "__main__":
    main()
