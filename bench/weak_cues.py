"""How many questions only the weak follow-up cues ("the two", "the other", "like that") would tie to
the last turn, with and without their "names nothing of its own" condition (`query.leans_on_history`).

Those cues point back in "Which of the two pulled out?" but not in "What are the two main segments of
the ISS?"; this counts, over squad-v1.1-dev's standalone questions and bench/data/followups' topic
changes, the questions no other cue reads as follow-ups, and how many of them the condition still
lets through (docs/benchmarks.md, section 12).

    .venv/bin/python bench/weak_cues.py ../shared/benchmarks/squad-v1.1-dev bench/data/followups
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.evaluation import read_questions
from service.query import _FOLLOW_UP, _WEAK_FOLLOW_UP, leans_on_history
from service.text import content_words


def main(folders: list[str]) -> None:
    for folder in folders:
        questions = [
            q["question"]
            for q in read_questions(Path(folder) / "questions.jsonl")
            if not q.get("history") or q.get("kind") == "topic-change"  # none that truly follows up
        ]
        weak_only = [
            q
            for q in questions
            if _WEAK_FOLLOW_UP.search(q) and not _FOLLOW_UP.search(q) and len(content_words(q)) >= 2
        ]
        kept = sum(leans_on_history(q) for q in weak_only)
        print(f"{folder}: {len(weak_only)} of {len(questions)} match only the weak cues; {kept} still do")


if __name__ == "__main__":
    main(sys.argv[1:])
