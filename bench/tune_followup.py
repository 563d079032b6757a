"""Tune how follow-up questions use the conversation, on the multi-turn set bench/data/followups.

Indexes the set's passages once (kept in --cache between runs), then asks every conversation's last
question several ways and prints Recall@1 and MRR@10 of its gold passage by kind: without history;
with the previous method (the last answer's vector blended in); with every earlier term; and with the
shipped method (`query.analyse`: topic terms of the earlier turn, embedded at CONTEXT_WEIGHT and
added to the keyword query) over a grid of TOPIC_SHARE and CONTEXT_WEIGHT. With --answers it scores
the answers instead (a gold answer in the answer given, refusals at the shipped threshold counting as
misses) over a grid of `answer.OFF_TOPIC_PENALTY`.

    .venv/bin/python bench/make_followups.py ../shared/benchmarks/squad-v1.1-dev bench/data/followups
    .venv/bin/python bench/tune_followup.py bench/data/followups --cache /tmp/issqa-followups
    .venv/bin/python bench/tune_followup.py bench/data/followups --cache /tmp/issqa-followups --answers

Never run this on evals/: that set only measures.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import answer, query, retrieval
from service.engine import DEFAULTS, Engine, Settings
from service.evaluation import read_questions, write_corpus
from service.text import STOPWORDS, content_words

SHARES = (0.3, 0.5, 0.7)
PENALTIES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
WEIGHTS = (0.25, 0.5, 1.0)


class CachedEmbedder:
    """The real embedder, remembering every text it has encoded (the grid asks the same ones)."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.seen: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], *, during=None) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if todo:
            self.seen.update(zip(todo, self.embedder.encode(todo), strict=True))
        if during is not None:
            during()
        return np.array([self.seen[t] for t in texts])

    def count_tokens(self, text: str) -> int:
        return self.embedder.count_tokens(text)


def previous_method(index, embedder, question, k, history):
    """What shipped before: the last answer embedded and blended in (weight 1.0 on a pronoun or
    ellipsis, else 0.25), and the answer's new names added to the keywords on a follow-up."""
    answer = previous = ""
    for turn in reversed(history):
        if turn["role"] == "assistant" and not answer and not previous:
            answer = query._MARKER.sub("", turn["content"]).strip()
        elif turn["role"] == "user":
            previous = turn["content"].strip()
            break
    cue = re.compile(
        r"\b(he|him|his|she|her|hers|they|them|their|theirs|it|its|this|that|these|those|there|then|"
        r"the same|the other|also|else)\b|^\s*(and|but|so|what about|how about)\b",
        re.I,
    )
    if not answer and not previous:
        vector = embedder.encode([question])[0]
        return retrieval.search(index, query.read(question, vector), k)
    asked = {w.lower() for w in query._NAME_WORD.findall(previous)}
    names = [w for w in dict.fromkeys(query._NAME_WORD.findall(answer)) if w.lower() not in asked | STOPWORDS]
    follow_up = bool(cue.search(question)) or len(content_words(question)) < 2
    weight = 1.0 if follow_up else 0.25
    own, earlier = embedder.encode([question, answer or previous])
    vector = own + weight * earlier
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    keywords = f"{question} {' '.join(names) if names else previous}" if follow_up else question
    return retrieval.search(index, query.read(keywords, vector), k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, help="keep the index here between runs")
    parser.add_argument("--no-grid", action="store_true", help="only the shipped settings")
    parser.add_argument("--answers", action="store_true", help="score answers over OFF_TOPIC_PENALTY")
    args = parser.parse_args()

    questions = [q for q in read_questions(args.folder / "questions.jsonl") if q.get("history")]
    # The follow-up kinds in the order seen, then topic changes (they are not follow-ups).
    kinds = tuple(sorted(dict.fromkeys(q["kind"] for q in questions), key=lambda k: k == "topic-change"))
    with tempfile.TemporaryDirectory() as tmp:
        base = args.cache or Path(tmp)
        docs, index_dir = base / "documents", base / "index"
        by_path = write_corpus(docs, args.folder / "passages.jsonl")
        engine = Engine(Settings.from_config({**DEFAULTS, "DOCUMENTS": docs, "INDEX": index_dir}))
        if engine.staleness():
            engine.build()
        index, embedder = engine.index(), CachedEmbedder(engine.embedder)

        def ask(question: str, history, **options) -> list:
            return retrieval.search(index, query.analyse(index, embedder, question, history, **options), 10)

        if args.answers:
            answer_grid(index, embedder, questions, kinds, engine.settings.min_confidence)
            return

        def measure(ask: Callable) -> dict[str, list[int | None]]:
            ranks: dict[str, list[int | None]] = {kind: [] for kind in kinds}
            for q in questions:
                hits = ask(q["question"], q["history"])
                cited = [by_path.get(h.document.path) for h in hits]
                ranks[q["kind"]].append(next((i for i, p in enumerate(cited, 1) if p == q["gold_pid"]), None))
            return ranks

        rows = [
            ("no history", lambda q, h: ask(q, ())),
            ("previous: last answer blended in", lambda q, h: previous_method(index, embedder, q, 10, h)),
            (
                "every earlier term (share 0)",
                lambda q, h: ask(q, h, share=0.0),
            ),
        ]
        grid = [(query.TOPIC_SHARE, query.CONTEXT_WEIGHT)]
        if not args.no_grid:
            grid += [(s, w) for s in SHARES for w in WEIGHTS if (s, w) != grid[0]]
        for share, weight in grid:
            shipped = (share, weight) == grid[0]
            rows.append(
                (
                    f"topic share {share}, weight {weight}" + (" (shipped)" if shipped else ""),
                    lambda q, h, s=share, w=weight: ask(q, h, weight=w, share=s),
                )
            )

        counts = {kind: sum(q["kind"] == kind for q in questions) for kind in kinds}
        print(f"conversations: {len(questions)} {counts}\n")
        print(
            "| method | " + " | ".join(f"{k} R@1 / MRR@10" for k in kinds) + " | all follow-ups R@1 |\n"
            "|---|" + "---|" * (len(kinds) + 1)
        )
        for name, method in rows:
            ranks = measure(method)
            cells = []
            for kind in kinds:
                r = ranks[kind]
                n = len(r) or 1
                cells.append(f"{sum(x == 1 for x in r) / n:.3f} / {sum(1 / x for x in r if x) / n:.3f}")
            follow = [x for kind in kinds if kind != "topic-change" for x in ranks[kind]]
            first = sum(x == 1 for x in follow) / (len(follow) or 1)
            print(f"| {name} | " + " | ".join(cells) + f" | {first:.3f} |", flush=True)


def answer_grid(index, embedder, questions: list[dict], kinds: tuple[str, ...], threshold: float) -> None:
    """Answer-level hits per kind for each OFF_TOPIC_PENALTY (retrieval does not depend on it)."""
    asked = []
    for q in questions:
        found = query.analyse(index, embedder, q["question"], q["history"])
        asked.append((q, found, retrieval.search(index, found, 10)))
    shipped = answer.OFF_TOPIC_PENALTY
    print("| OFF_TOPIC_PENALTY | " + " | ".join(kinds) + " | all follow-ups |\n|---|" + "---|" * (len(kinds) + 1))
    for penalty in sorted({*PENALTIES, shipped}):
        answer.OFF_TOPIC_PENALTY = penalty
        hits: dict[str, list[bool]] = {kind: [] for kind in kinds}
        for q, found, results in asked:
            given = answer.compose(found, results, threshold)
            text = given.answer.lower() if given.answered else ""
            hits[q["kind"]].append(any(a.lower() in text for a in q["answers"]))
        follow = [x for kind in kinds if kind != "topic-change" for x in hits[kind]]
        cells = [f"{sum(h) / (len(h) or 1):.3f}" for h in hits.values()]
        name = f"{penalty}" + (" (shipped)" if penalty == shipped else "")
        print(f"| {name} | " + " | ".join(cells) + f" | {sum(follow) / (len(follow) or 1):.3f} |", flush=True)
    answer.OFF_TOPIC_PENALTY = shipped


if __name__ == "__main__":
    main()
