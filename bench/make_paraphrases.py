"""Build bench/data/paraphrases/passages.jsonl and validate its hand-written questions.jsonl.

Why: the retrieval weights were tuned on SQuAD, whose questions reuse the words of their paragraph.
Real users ask in their own words ("How many big green spaces open to everyone does the city have?"
rather than "How many large public parks does Fresno have?"), and on such questions keyword overlap
is little help. This is a tuning set of such paraphrased questions over ten SQuAD v1.1 dev articles,
several of a similar kind (three cities, two universities, two historical peoples, a river and a
river basin), so a question that does not reuse the passage's words has real distractors. The
passages are copied here, deterministically; the questions are written by hand (never generated) and
this script only checks them.

Passages: every line of `../shared/benchmarks/squad-v1.1-dev/passages.jsonl` whose title is one of
TITLES, unchanged and in the file's order. Run from the repository root:

    python3 bench/make_paraphrases.py
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from make_conversations import write_passages
from make_space_conversations import read_questions, report

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "data" / "paraphrases"
TITLES = (
    "Amazon_rainforest",
    "Fresno,_California",
    "Harvard_University",
    "Huguenot",
    "Jacksonville,_Florida",
    "Normans",
    "Oxygen",
    "Rhine",
    "University_of_Chicago",
    "Warsaw",
)
QID = re.compile(r"pp-\d{3}")
KIND = "paraphrase"
MIN_QUESTIONS = 150
MIN_PER_ARTICLE = 12
MIN_GOLD_PASSAGES = 100
MAX_SHARED_WORDS = 1
MAX_ANSWERS = 3
WORD = re.compile(r"[^\W\d_]+")  # runs of letters, accented ones too ("Płock", "Łazienki")
MIN_WORD_LETTERS = 4
# Function words of 4+ letters: those of service/text.py STOPWORDS plus a few more of the same sort.
# Nothing that carries meaning ("city", "first", "large") is here: those must be paraphrased.
STOPWORDS = frozenset(
    """about above across after again against along also although among another around because been
    before behind being below beside between both could does doing down during each either else even
    ever every from further have having here hers herself himself into itself just many might more
    most much must myself neither once only onto other ours over same shall should since some such
    than that their theirs them themselves then there these they this those though through till
    toward towards under unless until upon very were what when where whether which while whom whose
    will with within without would your yours""".split()
)


def normalise(word: str) -> str:
    """`word` lowercased, without one trailing "s": "parks" and "Park" meet."""
    word = word.lower()
    return word[:-1] if word.endswith("s") else word


def content_words(text: str) -> set[str]:
    """The normalised words of 4+ letters of `text` that are not stopwords."""
    return {
        normalise(w) for w in WORD.findall(text) if len(w) >= MIN_WORD_LETTERS and w.lower() not in STOPWORDS
    }


def all_words(text: str) -> set[str]:
    """Every word of `text`, normalised, whatever its length: the passage side of the overlap."""
    return {normalise(w) for w in WORD.findall(text)}


def shared_words(question: str, passage: str, title: str) -> list[str]:
    """The content words of `question` that also occur in `passage`, less the words of `title`."""
    return sorted((content_words(question) & all_words(passage)) - all_words(title.replace("_", " ")))


def check_question(q: dict, by_pid: dict[str, dict]) -> list[str]:
    """The errors of one parsed question (an empty list when it is valid)."""
    where = q.get("qid")
    errors = []
    if not isinstance(where, str) or not QID.fullmatch(where):
        errors.append(f"{where}: qid must look like pp-001")
    if q.get("is_impossible") is not False:
        errors.append(f"{where}: is_impossible must be false")
    if q.get("kind") != KIND:
        errors.append(f"{where}: kind must be {KIND!r}")
    question = q.get("question")
    if not isinstance(question, str) or not question.strip():
        return [*errors, f"{where}: empty question"]
    return errors + check_answerable(q, by_pid)


def check_answerable(q: dict, by_pid: dict[str, dict]) -> list[str]:
    """The errors of a question with a non-empty text: its gold passage, answers and shared words.

    bench/make_space_paraphrases.py checks its answerable questions with it too, so both sets keep one
    rule for what "in the reader's own words" means.
    """
    where, question = q.get("qid"), q["question"]
    gold = by_pid.get(q.get("gold_pid"))
    if gold is None:
        return [f"{where}: gold_pid {q.get('gold_pid')!r} does not exist"]
    errors = []
    if q.get("title") != gold["title"]:
        errors.append(f"{where}: title {q.get('title')!r} != {gold['title']!r}")
    answers = q.get("answers")
    if not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS:
        errors.append(f"{where}: answers must be a list of 1 to {MAX_ANSWERS} strings")
        answers = []
    for answer in answers:
        if not isinstance(answer, str) or not answer.strip():
            errors.append(f"{where}: empty or non-string answer {answer!r}")
            continue
        if answer not in gold["text"]:
            errors.append(f"{where}: answer {answer!r} is not a substring of {gold['pid']}")
        if answer.lower() in question.lower():
            errors.append(f"{where}: answer {answer!r} appears in the question")
    shared = shared_words(question, gold["text"], gold["title"])
    if len(shared) > MAX_SHARED_WORDS:
        errors.append(
            f"{where}: shares {len(shared)} content words with {gold['pid']} "
            f"(at most {MAX_SHARED_WORDS}): {', '.join(shared)}"
        )
    return errors


def check_questions(passages: list[dict], questions_path: Path) -> tuple[list[str], list[dict]]:
    """Validate questions.jsonl against the corpus: the error messages and the parsed questions."""
    errors: list[str] = []
    by_pid = {p["pid"]: p for p in passages}
    questions = []
    for _, q in read_questions(questions_path, errors):
        errors += check_question(q, by_pid)
        questions.append(q)

    valid = [q for q in questions if q.get("gold_pid") in by_pid]
    if len(questions) < MIN_QUESTIONS:
        errors.append(f"questions: {len(questions)} < {MIN_QUESTIONS}")
    per_title = Counter(by_pid[q["gold_pid"]]["title"] for q in valid)
    for title in TITLES:
        if per_title[title] < MIN_PER_ARTICLE:
            errors.append(f"questions on {title}: {per_title[title]} < {MIN_PER_ARTICLE}")
    gold_pids = {q["gold_pid"] for q in valid}
    if len(gold_pids) < MIN_GOLD_PASSAGES:
        errors.append(f"distinct gold passages: {len(gold_pids)} < {MIN_GOLD_PASSAGES}")
    return errors, valid


def print_counts(passages: list[dict], questions: list[dict]) -> None:
    """Print passages and questions per article, then the totals."""
    by_pid = {p["pid"]: p for p in passages}
    per_title = Counter(p["title"] for p in passages)
    asked = Counter(by_pid[q["gold_pid"]]["title"] for q in questions)
    golds = {t: {q["gold_pid"] for q in questions if by_pid[q["gold_pid"]]["title"] == t} for t in TITLES}
    shared = Counter(
        len(shared_words(q["question"], by_pid[q["gold_pid"]]["text"], q["title"]))
        for q in questions
        if isinstance(q.get("question"), str)
    )
    print("per article: passages / questions / distinct gold passages")
    for title in TITLES:
        print(f"  {per_title[title]:4d} / {asked[title]:4d} / {len(golds[title]):4d}  {title}")
    print(f"passages: {len(passages)}")
    print(f"questions: {len(questions)}")
    print(f"distinct gold passages: {len({q['gold_pid'] for q in questions})}")
    detail = ", ".join(f"{n}: {c}" for n, c in sorted(shared.items()))
    print(f"content words shared with the gold passage (count: questions): {detail}")


Checks = Callable[[list[dict], Path], tuple[list[str], list[dict]]]
Counts = Callable[[list[dict], list[dict]], None]


def validate(passages: list[dict], out_dir: Path, check: Checks, counts: Counts) -> int:
    """Check `out_dir`'s questions.jsonl against `passages`, print the counts and the verdict.

    The exit status: 1 on any error. bench/make_space_paraphrases.py validates its set with it too.
    """
    questions_path = out_dir / "questions.jsonl"
    if not questions_path.exists():
        print(f"error: {questions_path} is missing", file=sys.stderr)
        return 1
    errors, questions = check(passages, questions_path)
    counts(passages, questions)
    return report(errors)


def main() -> int:
    """Write passages.jsonl, validate questions.jsonl, print the counts; 1 on any error."""
    passages = write_passages(TITLES, OUT_DIR)
    if passages is None:
        return 1
    return validate(passages, OUT_DIR, check_questions, print_counts)


if __name__ == "__main__":
    sys.exit(main())
