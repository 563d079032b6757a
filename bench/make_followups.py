"""Build a multi-turn tuning set for follow-up questions from SQuAD v1.1 dev (never from evals/).

Each conversation is two turns about SQuAD articles. Turn 1 is a SQuAD question that names the
article's subject, answered by the sentence of its gold passage that holds the gold answer (quoted
like an iss-qa answer, `" [1]"` after it). Turn 2 is another question about the same article, rewritten
into a real follow-up: the article's subject ("the Black Death", "Warsaw", "the Normans") is replaced
by a pronoun ("it", "they", "its", "their"), or "in Warsaw" by "there". A pair is kept only when a
rewrite happened, so the final question no longer names its subject. Kinds:

- `followup-same`: turn 2's gold passage is turn 1's (the previous answer's passage is right);
- `followup-other`: turn 2's gold passage is another passage of the same article (the previous
  answer's passage is the trap);
- `topic-change`: turn 2 is an unmodified question about a different article (no drag-back).

The corpus is every passage of the chosen articles, so the same-article passages compete. Output, in
the format of `evals/` and `shared/benchmarks/` (`issqa eval` reads it as is):

    .venv/bin/python bench/make_followups.py ../shared/benchmarks/squad-v1.1-dev bench/data/followups
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.chunking import sentences

# Article -> (how its subject is written, longest first; the pronoun; whether it is a place).
SUBJECTS: dict[str, tuple[list[str], str, bool]] = {
    "1973_oil_crisis": (
        ["the 1973 oil crisis", "1973 oil crisis", "the oil crisis", "oil crisis"],
        "it",
        False,
    ),
    "Amazon_rainforest": (
        [
            "the Amazon rainforest",
            "Amazon rainforest",
            "the Amazon rain forest",
            "the rainforest",
            "the Amazon",
        ],
        "it",
        True,
    ),
    "Black_Death": (["the Black Death", "Black Death"], "it", False),
    "Ctenophora": (
        ["ctenophores", "Ctenophores", "Ctenophora", "the ctenophora", "comb jellies"],
        "they",
        False,
    ),
    "Fresno,_California": (["Fresno"], "it", True),
    "Harvard_University": (["Harvard University", "Harvard"], "it", False),
    "Huguenot": (["the Huguenots", "Huguenots"], "they", False),
    "Jacksonville,_Florida": (["Jacksonville"], "it", True),
    "Normans": (["the Normans", "Normans"], "they", False),
    "Oxygen": (["oxygen", "Oxygen"], "it", False),
    "Packet_switching": (["packet switching", "packet-switching", "Packet switching"], "it", False),
    "Rhine": (["the Rhine river", "the Rhine River", "the Rhine", "Rhine"], "it", True),
    "Steam_engine": (["the steam engine", "a steam engine", "steam engines", "steam engine"], "it", False),
    "Warsaw": (["Warsaw"], "it", True),
    "Yuan_dynasty": (["the Yuan dynasty", "Yuan dynasty", "the Yuan Dynasty"], "it", False),
    "Victoria_(Australia)": (["Victoria"], "it", True),
}
PLURALS = {
    "ctenophores",
    "comb jellies",
    "steam engines",
    "the huguenots",
    "huguenots",
    "the normans",
    "normans",
}
KINDS = ("followup-same", "followup-other", "followup-person", "topic-change")
OBJECT = {"it": "it", "they": "them"}
AGREE = {"does they": "do they", "is they": "are they", "was they": "were they", "has they": "have they"}
# Before these the subject is a modifier or part of another name ("the Harvard medical school",
# "liquid oxygen", "the Parliament of Victoria"): no pronoun can stand there.
_MODIFIED_BY = set(
    "the a an this that liquid element downtown greater many much few several some all".split()
)
POSSESSIVE = {"it": "its", "they": "their"}
# After these words a pronoun is the subject of its clause ("when did it begin"); otherwise an object.
_SUBJECT_BEFORE = set(
    "did does do was were is are has have had can could would will should may might must "
    "what who when where why how which that and or but while".split()
)
_PREPOSITIONS = set("in at inside within throughout across near".split())


def rewrite(question: str, title: str) -> str | None:
    """`question` with its article's subject replaced by a pronoun, or None when it does not name it."""
    names, _, place = SUBJECTS[title]
    for name in names:
        name = f"[Tt]{re.escape(name[1:])}" if name.startswith("the ") else re.escape(name)
        pattern = re.compile(rf"(?<![\w-]){name}(?P<poss>’s|'s|')?(?![\w-])(?!\s+[A-Z])")
        match = pattern.search(question)
        if not match:
            continue
        said = question[match.start() : match.start("poss") if match.group("poss") else match.end()]
        pronoun = "they" if said.lower() in PLURALS else SUBJECTS[title][1]
        before = question[: match.start()].rstrip()
        words = before.split()
        prev = words[-1].lower().strip(",") if words else ""
        if (
            prev in _MODIFIED_BY
            or (len(words) > 1 and words[-1][:1].isupper())  # "Berlin Huguenots"
            or (prev == "of" and len(words) > 1 and words[-2][:1].isupper())
        ):
            return None
        if match.group("poss") or (name.endswith("s") and question[match.end() :].startswith("'")):
            word = POSSESSIVE[pronoun]
        elif place and prev in _PREPOSITIONS:
            # "How many people live in Warsaw?" -> "How many people live there?"
            before = before[: len(before) - len(prev)].rstrip()
            word = "there"
        elif not prev or prev in _SUBJECT_BEFORE:
            word = pronoun
        else:
            word = OBJECT[pronoun]
        if not before:
            word = word[0].upper() + word[1:]
        rewritten = re.sub(r"\s+", " ", f"{before} {word}{question[match.end() :]}".strip())
        for wrong, right in AGREE.items():
            rewritten = re.sub(rf"\b{wrong}\b", right, rewritten)
        return rewritten
    return None


PERSON_PRONOUNS = {"subject": "he", "object": "him", "possessive": "his"}
_PERSON_NAME = re.compile(r"^(?:[A-Z][\w’'.-]+\s?){1,4}$")


def rewrite_person(question: str, person: str) -> str | None:
    """`question` with the person's name (full, else surname) replaced by he/him/his, or None."""
    surname = person.split()[-1]
    for name in (person, surname):
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?P<poss>’s|'s)?(?![\w-])", question)
        if not match:
            continue
        before = question[: match.start()].rstrip()
        words = before.split()
        prev = words[-1].lower() if words else ""
        if (
            prev in _MODIFIED_BY
            or prev == "of"
            or (len(words) > 1 and words[-1][:1].isupper())
            or question[match.end() :].startswith(" of ")
        ):
            return None
        if match.group("poss"):
            word = "his"
        elif not prev or prev in _SUBJECT_BEFORE:
            word = "he"
        else:
            word = "him"
        word = word if before else word.capitalize()
        rewritten = re.sub(r"\s+", " ", f"{before} {word}{question[match.end() :]}".strip())
        return None if surname in rewritten else rewritten
    return None


def person_followups(questions: list[dict], rng: random.Random, per_article: int) -> list[dict]:
    """Turn 1 asks "Who ...?" and its answer names a person; turn 2 asks about that person as "he"."""
    out = []
    for title in SUBJECTS:
        mine = [q for q in questions if q["title"] == title]
        pairs = []
        for first in mine:
            person = first["answers"][0].strip()
            if not (first["question"].startswith("Who") and first["said"] and _PERSON_NAME.match(person)):
                continue
            if len(person.split()) < 2 or names_subject(person, title):  # "Polonia Warsaw" is no person
                continue
            if len(person.split()[-1]) < 4 or person.split()[-1] in first["question"]:
                continue
            for q in mine:
                rewritten = rewrite_person(q["question"], person) if q is not first else None
                if rewritten:
                    pairs.append((first, q, rewritten))
        rng.shuffle(pairs)
        for first, q, rewritten in pairs[:per_article]:
            out.append(conversation(q, rewritten, first, "followup-person"))
    return out


def names_subject(text: str, title: str) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text) for n in SUBJECTS[title][0])


def answer_sentence(passage: str, answers: list[str]) -> str | None:
    """The sentence of the passage holding the first gold answer found, quoted like an iss-qa answer."""
    for answer in answers:
        at = passage.find(answer)
        if at < 0:
            continue
        for start, end in sentences(passage):
            if start <= at < end:
                return f"{passage[start:end]} [1]"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad", type=Path, help="a SQuAD-format folder (squad-v1.1-dev)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-article", type=int, default=24, help="follow-ups per article at most")
    parser.add_argument("--topic-changes", type=int, default=120)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    passages = [json.loads(x) for x in (args.squad / "passages.jsonl").read_text().splitlines()]
    passages = [p for p in passages if p["title"] in SUBJECTS]
    text = {p["pid"]: p["text"] for p in passages}
    questions = [json.loads(x) for x in (args.squad / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if q["title"] in SUBJECTS and not q.get("is_impossible")]
    for q in questions:
        q["said"] = answer_sentence(text[q["gold_pid"]], q["answers"])

    out = []
    openers: dict[str, list[dict]] = {}
    for title in SUBJECTS:
        mine = [q for q in questions if q["title"] == title]
        # Turn 1 names the subject, so the history carries it; its answer is a sentence of its passage.
        openers[title] = [q for q in mine if q["said"] and names_subject(q["question"], title)]
        follow = [(q, rewrite(q["question"], title)) for q in mine]
        follow = [(q, r) for q, r in follow if r and r != q["question"]]
        rng.shuffle(follow)
        kept = 0
        for q, rewritten in follow:
            if kept >= args.per_article:
                break
            same = [o for o in openers[title] if o["gold_pid"] == q["gold_pid"] and o["qid"] != q["qid"]]
            other = [o for o in openers[title] if o["gold_pid"] != q["gold_pid"]]
            want_same = kept % 2 == 0
            pool = (same or other) if want_same else (other or same)
            if not pool:
                continue
            first = rng.choice(pool)
            kind = "followup-same" if first["gold_pid"] == q["gold_pid"] else "followup-other"
            out.append(conversation(q, rewritten, first, kind))
            kept += 1

    out += person_followups(questions, rng, args.per_article // 4)
    titles = list(SUBJECTS)
    for _ in range(args.topic_changes):
        a, b = rng.sample(titles, 2)
        first = rng.choice(openers[a])
        q = rng.choice([q for q in questions if q["title"] == b])
        out.append(conversation(q, q["question"], first, "topic-change"))

    for n, q in enumerate(out, 1):
        q["qid"] = f"fu-{n:04d}"
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "passages.jsonl", "w", encoding="utf-8") as f:
        for p in passages:
            f.write(
                json.dumps({"pid": p["pid"], "title": p["title"], "text": p["text"]}, ensure_ascii=False)
                + "\n"
            )
    with open(args.out / "questions.jsonl", "w", encoding="utf-8") as f:
        for q in out:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    counts = {k: sum(q["kind"] == k for q in out) for k in KINDS}
    print(f"{len(passages)} passages, {len(out)} conversations: {counts}")


def conversation(q: dict, question: str, first: dict, kind: str) -> dict:
    return {
        "qid": "",
        "question": question,
        "original_question": q["question"],
        "gold_pid": q["gold_pid"],
        "title": q["title"],
        "answers": q["answers"],
        "is_impossible": False,
        "kind": kind,
        "history": [
            {"role": "user", "content": first["question"]},
            {"role": "assistant", "content": first["said"]},
        ],
        "squad_qids": [first["qid"], q["qid"]],
    }


if __name__ == "__main__":
    main()
