"""A server worker's first question, as a worker used to start (one text encoded) and as it starts now.

`serving.load_app` asks `WARM_UP_QUESTION` before the worker serves, so that what a first question
loads (the spelling word list of `query.respell`, the confidence model and the rest) is loaded then.
Each way runs in a fresh process over the same index, since these load once per process, and asks the
same questions in the same order. Whichever question meets the first word no passage holds loads the
word list, so the script prints the first and the slowest question, and what all of them took beyond
their p50 each.

    .venv/bin/python bench/first_question.py ../shared/benchmarks/squad-v1.1-dev [--passages 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from perf import write_corpus  # noqa: E402

from service import create_app, get_engine, serving  # noqa: E402

WAYS = {
    "before": "the model and the index loaded, one text encoded",
    "load_app": "serving.load_app, which also asks WARM_UP_QUESTION",
}


def start_and_ask(way: str, folder: Path) -> list[float]:
    """Start as a worker does in `way`, then ask the questions in `folder`; their times in seconds."""
    config = {"DOCUMENTS": folder / "documents", "INDEX": folder / "index"}
    if way == "load_app":
        app = serving.load_app(config)
    else:
        app = create_app(config)
        get_engine(app).index()
        get_engine(app).embedder.encode(["warm-up"])
    engine = get_engine(app)
    times = []
    for question in json.loads((folder / "questions.json").read_text()):
        started = time.perf_counter()
        engine.ask(question)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--questions", type=int, default=21)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # the fresh process's part
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        print(json.dumps(start_and_ask(args.way, args.folder)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        asked = write_corpus(args.benchmark, folder / "documents", args.passages)
        questions = asked[:: max(1, len(asked) // args.questions)][: args.questions]
        (folder / "questions.json").write_text(json.dumps(questions))
        get_engine(create_app({"DOCUMENTS": folder / "documents", "INDEX": folder / "index"})).build()
        for way, about in WAYS.items():
            command = [sys.executable, __file__, str(args.benchmark), "--way", way, "--folder", str(folder)]
            run = subprocess.run(command, capture_output=True, text=True, check=True)
            times = [t * 1000 for t in json.loads(run.stdout.splitlines()[-1])]
            p50 = statistics.median(times)
            slowest = max(range(len(times)), key=times.__getitem__)
            print(
                f"{way} ({about}):\n  first question {times[0]:.1f} ms; slowest {times[slowest]:.1f} ms "
                f"(question {slowest + 1}); p50 {p50:.1f} ms; the {len(times)} questions took "
                f"{sum(times) - len(times) * p50:.1f} ms more than {len(times)} times the p50"
            )


if __name__ == "__main__":
    main()
