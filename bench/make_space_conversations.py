"""Build evals/space-conversations/passages.jsonl and validate its hand-written questions.jsonl.

Why: follow-up questions such as "When was it launched?" are only ambiguous over a corpus where many
subjects were launched, measured, discovered or led by someone. Ten Wikipedia spaceflight articles plus
the two ISS news articles give that corpus, so the set measures whether `history` picks the right
passage. The passages are rebuilt here, deterministically, so the set can be checked and regenerated;
the questions are written by hand (never generated) and this script only checks them.

Passages: one per non-empty paragraph line of `../shared/corpora/wikipedia-space/*.txt`, skipping
section headings (`== ... ==`) and lines shorter than 200 characters, then every line of
`evals/iss-news/passages.jsonl` unchanged. Run from the repository root:

    python3 bench/make_space_conversations.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WIKI_DIR = ROOT.parent / "shared" / "corpora" / "wikipedia-space"
NEWS_PASSAGES = ROOT / "evals" / "iss-news" / "passages.jsonl"
OUT_DIR = ROOT / "evals" / "space-conversations"
MIN_CHARS = 200
MIN_COUNTS = {"followup": 45, "topic-change": 15}
MIN_FOLLOWUP_PER_WIKI_ARTICLE = 3
MIN_FOLLOWUP_NEWS = 5
MIN_FOLLOWUP_THREE_TURN = 8
ANSWER_SUFFIX = " [1]"
TITLE_WORD = re.compile(r"[A-Za-z]{4,}")
PERSONAL_PRONOUN = re.compile(r"\b(he|she|him|his|her)\b", re.IGNORECASE)
MIN_FOLLOWUP_PERSONAL = 5


def is_heading(line: str) -> bool:
    """Return True for a section heading line such as `== History ==` or `=== Formation ===`."""
    stripped = line.strip()
    return stripped.startswith("==") and stripped.endswith("==")


def wiki_passages(directory: Path) -> list[dict]:
    """One passage per paragraph line of each article, in file order, pids counted per file."""
    passages = []
    for path in sorted(directory.glob("*.txt")):
        # Universal newlines turn the files' CRLF into "\n"; the paragraph is the line without it.
        lines = path.read_text(encoding="utf-8").split("\n")
        k = 0
        for line in lines:
            if not line.strip() or is_heading(line) or len(line) < MIN_CHARS:
                continue
            passages.append(
                {
                    "pid": f"{path.stem}#{k}",
                    "title": path.stem.replace("_", " "),
                    "source": "Wikipedia",
                    "text": line,
                }
            )
            k += 1
    return passages


def build_passages() -> list[str]:
    """Return the JSONL lines of the corpus: Wikipedia passages, then the news passages unchanged."""
    lines = [json.dumps(p, ensure_ascii=False) for p in wiki_passages(WIKI_DIR)]
    lines += [line for line in NEWS_PASSAGES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def read_questions(path: Path, errors: list[str]) -> Iterator[tuple[int, dict]]:
    """Each question object of a JSONL file with its line number; what is not one, or repeats a qid,
    is added to `errors` instead (the checks of every hand-written set start here)."""
    seen: set[object] = set()
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            q = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: does not parse: {exc}")
            continue
        if not isinstance(q, dict):
            errors.append(f"line {n}: not a JSON object")
            continue
        qid = q.get("qid", f"line {n}")
        if qid in seen:
            errors.append(f"{qid}: duplicate qid")
        seen.add(qid)
        yield n, q


def check_questions(
    passages: list[dict],
    questions_path: Path,
    *,
    min_counts: Mapping[str, int] = MIN_COUNTS,
    min_followup_per_article: int = MIN_FOLLOWUP_PER_WIKI_ARTICLE,
    article_source: str | None = "Wikipedia",
    min_followup_news: int = MIN_FOLLOWUP_NEWS,
    min_three_turn: int = MIN_FOLLOWUP_THREE_TURN,
    min_personal: int = MIN_FOLLOWUP_PERSONAL,
) -> list[str]:
    """Validate questions.jsonl against the corpus; return a list of error messages (empty if valid).

    The defaults are this set's minimums. Another set passes its own: `article_source` names the
    `source` of the passages whose articles each need `min_followup_per_article` follow-ups (the
    others count as news articles, `min_followup_news` follow-ups in all); None makes every passage
    an article and there are no news articles.
    """
    errors: list[str] = []
    by_pid = {p["pid"]: p for p in passages}
    texts = [p["text"] for p in passages]
    kinds: Counter[str] = Counter()
    followup_by_title: Counter[str] = Counter()
    three_turn_followups = 0
    personal_followups = 0
    is_article = [article_source is None or p.get("source") == article_source for p in passages]
    news_titles = {p["title"] for p, article in zip(passages, is_article, strict=True) if not article}
    wiki_titles = {p["title"] for p, article in zip(passages, is_article, strict=True) if article}

    for n, q in read_questions(questions_path, errors):
        where = q.get("qid", f"line {n}")
        if q.get("is_impossible") is not False:
            errors.append(f"{where}: is_impossible must be false")
        gold = by_pid.get(q.get("gold_pid"))
        if gold is None:
            errors.append(f"{where}: gold_pid {q.get('gold_pid')!r} does not exist")
            continue
        if q.get("title") != gold["title"]:
            errors.append(f"{where}: title {q.get('title')!r} != {gold['title']!r}")
        answers = q.get("answers") or []
        if not answers:
            errors.append(f"{where}: no answers")
        for answer in answers:
            if answer not in gold["text"]:
                errors.append(f"{where}: answer {answer!r} not in {gold['pid']}")
        history = q.get("history")
        if not isinstance(history, list) or len(history) not in (2, 4):
            errors.append(f"{where}: history must have 2 or 4 entries")
            history = []
        for i, turn in enumerate(history):
            role = "user" if i % 2 == 0 else "assistant"
            if turn.get("role") != role:
                errors.append(f"{where}: history[{i}] role should be {role}")
            content = turn.get("content", "")
            if role == "assistant":
                sentence = content.removesuffix(ANSWER_SUFFIX)
                if not content.endswith(ANSWER_SUFFIX) or not sentence:
                    errors.append(f"{where}: history[{i}] does not end with {ANSWER_SUFFIX!r}")
                elif not any(sentence in text for text in texts):
                    errors.append(f"{where}: history[{i}] is not a verbatim corpus sentence")
        kind = q.get("kind")
        kinds[kind] += 1
        if kind in ("followup", "followup-across"):
            question_words = {w.lower() for w in TITLE_WORD.findall(q.get("question", ""))}
            title_words = {w.lower() for w in TITLE_WORD.findall(gold["title"])}
            named = sorted(question_words & title_words)
            if named:
                errors.append(f"{where}: follow-up names its subject ({', '.join(named)})")
        if kind == "followup":
            followup_by_title[gold["title"]] += 1
            if len(history) == 4:
                three_turn_followups += 1
            if PERSONAL_PRONOUN.search(q.get("question", "")):
                personal_followups += 1
        elif kind == "followup-across":
            # A story followed into another article: no article holding the last answer is the gold's.
            last = last_answer(q)
            holding = {p["title"] for p in passages if last and last in p["text"]}
            if not holding:
                errors.append(f"{where}: followup-across has no last answer in the corpus")
            elif gold["title"] in holding:
                errors.append(f"{where}: followup-across is answered in the last answer's article")
        elif kind != "topic-change":
            errors.append(f"{where}: unknown kind {kind!r}")

    for kind, minimum in min_counts.items():
        if kinds[kind] < minimum:
            errors.append(f"kind {kind}: {kinds[kind]} < {minimum}")
    for title in sorted(wiki_titles):
        if followup_by_title[title] < min_followup_per_article:
            errors.append(f"followups on {title}: {followup_by_title[title]} < {min_followup_per_article}")
    news_followups = sum(followup_by_title[t] for t in news_titles)
    if news_followups < min_followup_news:
        errors.append(f"followups on the news articles: {news_followups} < {min_followup_news}")
    if three_turn_followups < min_three_turn:
        errors.append(f"three-turn followups: {three_turn_followups} < {min_three_turn}")
    if personal_followups < min_personal:
        errors.append(f"followups with he/she/him/his/her: {personal_followups} < {min_personal}")
    return errors


def last_answer(question: dict) -> str | None:
    """The last assistant sentence of the question's history, without its marker (None if there is none)."""
    history = question.get("history") or []
    answers = [
        t.get("content", "").removesuffix(ANSWER_SUFFIX) for t in history if t.get("role") == "assistant"
    ]
    return answers[-1] if answers else None


def last_answer_pid(passages: list[dict], question: dict) -> str | None:
    """Return the gold pid if it holds the last assistant sentence, else the first passage that does."""
    last = last_answer(question)
    if last is None:
        return None
    gold = next((p for p in passages if p["pid"] == question.get("gold_pid")), None)
    if gold is not None and last in gold["text"]:
        return gold["pid"]
    return next((p["pid"] for p in passages if last in p["text"]), None)


def followup_subkind(passages: list[dict], question: dict) -> str:
    """Classify a follow-up by where its gold passage lies relative to the last assistant answer."""
    pid = last_answer_pid(passages, question)
    if pid == question["gold_pid"]:
        return "same passage as last answer"
    if pid is not None and pid.split("#")[0] == question["gold_pid"].split("#")[0]:
        return "other passage of the same article"
    return "another article"


def print_counts(passages: list[dict], questions_path: Path) -> None:
    """Print passage counts per article, then question counts per kind, sub-kind and gold article."""
    per_title = Counter(p["title"] for p in passages)
    print(f"passages: {len(passages)}")
    for title, count in sorted(per_title.items()):
        print(f"  {count:4d}  {title}")
    if not questions_path.exists():
        return
    try:
        lines = questions_path.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line) for line in lines if line.strip()]
    except (json.JSONDecodeError, OSError):
        return  # check_questions reports the details
    print(f"questions: {len(questions)}")
    for kind, count in sorted(Counter(q.get("kind") for q in questions).items()):
        turns = Counter(len(q.get("history") or []) // 2 + 1 for q in questions if q.get("kind") == kind)
        detail = ", ".join(f"{n}-turn: {c}" for n, c in sorted(turns.items()))
        print(f"  {count:4d}  {kind} ({detail})")
    pids = {p["pid"] for p in passages}
    followups = [q for q in questions if q.get("kind") == "followup" and q.get("gold_pid") in pids]
    for subkind, count in sorted(Counter(followup_subkind(passages, q) for q in followups).items()):
        print(f"  {count:4d}    followup, gold = {subkind}")
    personal = sum(1 for q in followups if PERSONAL_PRONOUN.search(q.get("question", "")))
    print(f"  {personal:4d}    followup with he/she/him/his/her")
    print("per gold article (followup / topic-change):")
    for title in sorted(per_title):
        f = sum(1 for q in questions if q.get("title") == title and q.get("kind") == "followup")
        t = sum(1 for q in questions if q.get("title") == title and q.get("kind") == "topic-change")
        print(f"  {f:3d} / {t:3d}  {title}")


def main(out_dir: Path = OUT_DIR, **minimums: Any) -> int:
    """Write passages.jsonl, print the counts, and return 1 if questions.jsonl fails a check.

    `out_dir` and `minimums` (check_questions' minimum counts) are for another question set over this
    corpus, such as bench/data/space-followups.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = build_passages()
    pids = [json.loads(line)["pid"] for line in lines]
    if len(pids) != len(set(pids)):
        print("error: duplicate pids", file=sys.stderr)
        return 1
    (out_dir / "passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    passages = [json.loads(line) for line in lines]
    questions_path = out_dir / "questions.jsonl"
    print_counts(passages, questions_path)
    if not questions_path.exists():
        print(f"error: {questions_path} is missing", file=sys.stderr)
        return 1
    return report(check_questions(passages, questions_path, **minimums))


def report(errors: list[str]) -> int:
    """Print the validation errors and the verdict; the exit status: 1 when there are errors."""
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    print("questions.jsonl: OK" if not errors else f"questions.jsonl: {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
