"""Build bench/data/conversations/passages.jsonl and validate its hand-written questions.jsonl.

Why: `evals/space-conversations` measures follow-up handling and must never be tuned on. This is its
tuning twin, built the same way over a different corpus: ten SQuAD v1.1 dev articles on which a
follow-up asked alone ("When was it founded?", "Who was its first president?", "What is the highest
temperature recorded there?") is ambiguous, because several organisations were founded and led, several
places have a population and a climate, several networks were launched. The passages are copied here,
deterministically; the questions are written by hand (never generated) and this script only checks
them, with the check functions of bench/make_space_conversations.py and this set's minimums.

Passages: every line of `../shared/benchmarks/squad-v1.1-dev/passages.jsonl` whose title is one of
TITLES, unchanged and in the file's order. Run from the repository root:

    python3 bench/make_conversations.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from make_space_conversations import check_questions, print_counts, report

ROOT = Path(__file__).resolve().parents[1]
SQUAD_PASSAGES = ROOT.parent / "shared" / "benchmarks" / "squad-v1.1-dev" / "passages.jsonl"
OUT_DIR = ROOT / "bench" / "data" / "conversations"
TITLES = (
    "1973_oil_crisis",
    "Fresno,_California",
    "Harvard_University",
    "Intergovernmental_Panel_on_Climate_Change",
    "Jacksonville,_Florida",
    "Packet_switching",
    "Scottish_Parliament",
    "Sky_(United_Kingdom)",
    "University_of_Chicago",
    "Victoria_(Australia)",
)
MIN_COUNTS = {"followup": 70, "topic-change": 20}
MIN_FOLLOWUP_PER_ARTICLE = 3
MIN_FOLLOWUP_THREE_TURN = 15
MIN_FOLLOWUP_PERSONAL = 12


def build_passages(titles: tuple[str, ...] = TITLES) -> list[str]:
    """Return the JSONL lines of the corpus: the SQuAD lines of the chosen articles, unchanged."""
    lines = [line for line in SQUAD_PASSAGES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if json.loads(line)["title"] in titles]


def write_passages(titles: tuple[str, ...], out_dir: Path) -> list[dict] | None:
    """Copy the SQuAD passages of `titles` to `out_dir`/passages.jsonl and return them parsed; None,
    after saying why, when an article is missing or a pid repeats (bench/make_paraphrases.py too)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = build_passages(titles)
    passages = [json.loads(line) for line in lines]
    missing = sorted(set(titles) - {p["title"] for p in passages})
    if missing:
        print(f"error: articles not in {SQUAD_PASSAGES}: {', '.join(missing)}", file=sys.stderr)
        return None
    pids = [p["pid"] for p in passages]
    if len(pids) != len(set(pids)):
        print("error: duplicate pids", file=sys.stderr)
        return None
    (out_dir / "passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return passages


def main() -> int:
    """Write passages.jsonl, print the counts, and return 1 if questions.jsonl fails a check."""
    passages = write_passages(TITLES, OUT_DIR)
    if passages is None:
        return 1
    questions_path = OUT_DIR / "questions.jsonl"
    print_counts(passages, questions_path)
    if not questions_path.exists():
        print(f"error: {questions_path} is missing", file=sys.stderr)
        return 1
    errors = check_questions(
        passages,
        questions_path,
        min_counts=MIN_COUNTS,
        min_followup_per_article=MIN_FOLLOWUP_PER_ARTICLE,
        article_source=None,
        min_followup_news=0,
        min_three_turn=MIN_FOLLOWUP_THREE_TURN,
        min_personal=MIN_FOLLOWUP_PERSONAL,
    )
    return report(errors)


if __name__ == "__main__":
    sys.exit(main())
