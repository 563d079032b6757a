"""Build bench/data/space-followups/passages.jsonl and validate its hand-written questions.jsonl.

Why: `evals/space-conversations` measures follow-up handling over ten Wikipedia spaceflight articles
and two ISS news articles, and must never be tuned on. This is its tuning twin over the very same
corpus, so that the ambiguity of a follow-up asked alone ("When was it launched?", "Who led it?") is
the same kind as in the held-out set; its questions were written by hand without reading that set's
questions, so it can be tuned on freely. The passages are rebuilt with the functions of
bench/make_space_conversations.py (imported, not copied) and are byte for byte those of the held-out
set; the questions are never generated, and this script only checks them, with that script's check
functions and this set's minimums.

Run from the repository root:

    python3 bench/make_space_followups.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import make_space_conversations

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "data" / "space-followups"
# check_questions' minimums for this set: at or above the held-out set's.
MINIMUMS = {
    "min_counts": {"followup": 90, "topic-change": 25, "followup-across": 25},
    "min_followup_per_article": 6,
    "min_followup_news": 8,
    "min_three_turn": 15,
    "min_personal": 12,
}


def main() -> int:
    """Write passages.jsonl, print the counts, and return 1 if questions.jsonl fails a check."""
    return make_space_conversations.main(OUT_DIR, **MINIMUMS)


if __name__ == "__main__":
    sys.exit(main())
