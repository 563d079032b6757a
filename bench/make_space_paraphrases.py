"""Build bench/data/space-paraphrases/passages.jsonl and validate its hand-written questions.jsonl.

Why: the held-out sets over the project's own corpus (`evals/iss-news`, `evals/space-conversations`)
ask single questions the way a reader who has not seen the passage would, and iss-qa answers those far
worse than SQuAD's word-reusing questions; `bench/data/paraphrases` measures that kind of question
over SQuAD articles only. This is its twin over the held-out spaceflight corpus (ten Wikipedia
articles and the two ISS news articles, byte for byte the passages of `evals/space-conversations` and
`bench/data/space-followups`), with questions the corpus does not answer beside them, so the trust
side is measured in the same domain. The questions are written by hand (never generated); this script
only checks them, with bench/make_paraphrases.py's word-overlap rule (imported, not copied).

Run from the repository root:

    python3 bench/make_space_paraphrases.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from make_paraphrases import check_answerable, shared_words, validate
from make_space_conversations import build_passages, read_questions

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "data" / "space-paraphrases"
QID = re.compile(r"sp-\d{3}")
ANSWERABLE, UNANSWERABLE = "paraphrase", "unanswerable"
MIN_QUESTIONS = 100  # answerable ones
MIN_PER_WIKI_ARTICLE = 6
MIN_NEWS = 12  # over the two news articles together
MIN_GOLD_PASSAGES = 70
MIN_UNANSWERABLE = 25


def check_question(q: dict, by_pid: dict[str, dict]) -> list[str]:
    """The errors of one parsed question (an empty list when it is valid).

    An answerable question is checked as bench/make_paraphrases.py checks its own; an unanswerable one
    only for its shape, since no rule can tell that the corpus does not answer it (the README says how
    that was checked).
    """
    where = q.get("qid")
    errors = []
    if not isinstance(where, str) or not QID.fullmatch(where):
        errors.append(f"{where}: qid must look like sp-001")
    question = q.get("question")
    if not isinstance(question, str) or not question.strip():
        return [*errors, f"{where}: empty question"]
    kind = q.get("kind")
    if kind == UNANSWERABLE:
        if q.get("is_impossible") is not True:
            errors.append(f"{where}: an unanswerable question must have is_impossible true")
        if q.get("gold_pid") is not None:
            errors.append(f"{where}: an unanswerable question must have no gold_pid")
        if q.get("answers"):
            errors.append(f"{where}: an unanswerable question must have no answers")
        return errors
    if kind != ANSWERABLE:
        return [*errors, f"{where}: kind must be {ANSWERABLE!r} or {UNANSWERABLE!r}"]
    if q.get("is_impossible") is not False:
        errors.append(f"{where}: is_impossible must be false")
    return errors + check_answerable(q, by_pid)


def check_questions(passages: list[dict], questions_path: Path) -> tuple[list[str], list[dict]]:
    """Validate questions.jsonl against the corpus: the error messages and the parsed questions."""
    errors: list[str] = []
    by_pid = {p["pid"]: p for p in passages}
    questions = []
    for _, q in read_questions(questions_path, errors):
        errors += check_question(q, by_pid)
        questions.append(q)
    answerable = _answerable(questions, by_pid)
    if len(answerable) < MIN_QUESTIONS:
        errors.append(f"answerable questions: {len(answerable)} < {MIN_QUESTIONS}")
    unanswerable = sum(q.get("kind") == UNANSWERABLE for q in questions)
    if unanswerable < MIN_UNANSWERABLE:
        errors.append(f"unanswerable questions: {unanswerable} < {MIN_UNANSWERABLE}")
    per_title = Counter(by_pid[q["gold_pid"]]["title"] for q in answerable)
    wiki = sorted({p["title"] for p in passages if p.get("source") == "Wikipedia"})
    for title in wiki:
        if per_title[title] < MIN_PER_WIKI_ARTICLE:
            errors.append(f"questions on {title}: {per_title[title]} < {MIN_PER_WIKI_ARTICLE}")
    news = sum(n for title, n in per_title.items() if title not in wiki)
    if news < MIN_NEWS:
        errors.append(f"questions on the news articles: {news} < {MIN_NEWS}")
    golds = {q["gold_pid"] for q in answerable}
    if len(golds) < MIN_GOLD_PASSAGES:
        errors.append(f"distinct gold passages: {len(golds)} < {MIN_GOLD_PASSAGES}")
    return errors, questions


def _answerable(questions: list[dict], by_pid: dict[str, dict]) -> list[dict]:
    """The answerable questions whose gold passage exists: what the counts are over."""
    return [q for q in questions if q.get("kind") == ANSWERABLE and q.get("gold_pid") in by_pid]


def print_counts(passages: list[dict], questions: list[dict]) -> None:
    """Print the answerable questions per article, the unanswerable ones, and the word overlap."""
    by_pid = {p["pid"]: p for p in passages}
    answerable = _answerable(questions, by_pid)
    per_title = Counter(by_pid[q["gold_pid"]]["title"] for q in answerable)
    print("answerable questions per article:")
    for title, n in sorted(per_title.items()):
        print(f"  {n:3d}  {title}")
    print(f"answerable: {len(answerable)} over {len({q['gold_pid'] for q in answerable})} gold passages")
    print(f"unanswerable: {sum(q.get('kind') == UNANSWERABLE for q in questions)}")
    shared = Counter(
        len(shared_words(q["question"], by_pid[q["gold_pid"]]["text"], q["title"]))
        for q in answerable
        if isinstance(q.get("question"), str)
    )
    detail = ", ".join(f"{n}: {c}" for n, c in sorted(shared.items()))
    print(f"content words shared with the gold passage (count: questions): {detail}")


def main() -> int:
    """Write passages.jsonl, validate questions.jsonl, print the counts; 1 on any error."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    lines = build_passages()
    (OUT_DIR / "passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return validate([json.loads(line) for line in lines], OUT_DIR, check_questions, print_counts)


if __name__ == "__main__":
    sys.exit(main())
