"""Composing an extractive answer: sentences quoted verbatim from the retrieved passages, each cited.

No word of an answer is generated. The composer picks the sentences that best answer the question,
scoring each by meaning (its vector against the question's), by the question words it shares, and by
whether it holds the kind of thing asked for (a name, a date, a figure); then it quotes them with
their `[n]` markers, and with their articles' dates when sources of different dates are quoted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .documents import page_of
from .query import Query
from .retrieval import Hit
from .text import stems

NOT_FOUND = (
    "The documents do not say. The closest passages are listed below, but none of them answers this question."
)

# How much each signal counts when choosing sentences; tuned on squad-v1.1-dev by
# bench/tune_answer.py (docs/benchmarks.md).
WEIGHTS = {
    "similarity": 1.0,
    "overlap": 0.35,
    "passage": 0.0,
    "novelty": 0.1,
    # holds the kind of thing asked for: a new name (who), a date (when), a figure (how many), a place
    "person": 0.05,
    "time": 0.05,
    "number": 0.05,
    "place": 0.05,
}
CANDIDATE_PASSAGES = 3  # sentences are drawn from this many of the best passages
SECOND_SENTENCE_MARGIN = 0.04  # a second sentence is quoted when it scores this close to the best
# The sentence after the best one often finishes its thought ("... dismissed Rogozin. The new head
# will be Yuri Borisov."); it is quoted too when it scores this close to the best.
ADJACENT_MARGIN = 0.15
# When the best sentence lacks the kind of thing asked for (no new name for "who", no date for
# "when") and the sentence after it has one, that sentence is quoted too when it scores within this
# margin: the best one gives the context, the next the answer.
TYPED_ADJACENT_MARGIN = 0.3
# A different figure from an article of another date is quoted beside the best one when it is among
# this many best sentences and scores at least this share of the best: the other article's own
# answer to the same question. Set by hand (SQuAD has no dates to tune on); see docs/benchmarks.md.
CONFLICT_RANK = 3
CONFLICT_RATIO = 0.75

_MONTHS = "january february march april may june july august september october november december"
_DATE = re.compile(
    rf"\b(?:{'|'.join(_MONTHS.split())}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"(?:1[5-9]|20)\d\d|\d{1,2}(?:st|nd|rd|th)? century|yesterday|today|tomorrow)\b",
    re.I,
)
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred|"
    r"thousand|million|billion|half|twice|several)\b",
    re.I,
)
# Two or more capitalised words in a row, not at the start of the sentence: a likely name.
_NAME = re.compile(r"(?<=[\s(“\"'])[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)+")
_PLACE_OR_NAME = re.compile(r"(?<=[\s(“\"'])[A-Z][\w’'-]+")


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: where the passage lives and what it says."""

    n: int
    document_id: str
    path: str
    title: str
    published: str | None
    source: str | None
    url: str | None
    passage: str
    start: int
    end: int
    page: int | None  # the page the passage starts on, for paged documents (PDF)
    score: float


@dataclass(frozen=True)
class Answer:
    """The reply to one question, shaped exactly like the HTTP response body."""

    question: str
    answer: str
    answered: bool
    took_ms: float
    citations: list[Citation]

    def to_dict(self) -> dict:
        return asdict(self)


def citations_for(hits: list[Hit]) -> list[Citation]:
    """Number the hits 1..k as citations, in rank order."""
    return [
        Citation(
            n=i,
            document_id=h.document.id,
            path=h.document.path,
            title=h.document.title,
            published=h.document.published,
            source=h.document.source,
            url=h.document.url,
            passage=h.passage.text,
            start=h.passage.start,
            end=h.passage.end,
            page=page_of(h.document.pages, h.passage.start),
            score=round(h.score, 4),
        )
        for i, h in enumerate(hits, start=1)
    ]


@dataclass(frozen=True)
class Quote:
    """A sentence chosen for the answer: which citation it comes from and where in the passage."""

    n: int
    start: int  # offsets into the passage text
    end: int
    score: float


def features(query: Query, sentence: str) -> dict[str, float]:
    """The lexical signals of one candidate sentence (the embedding ones are added by the caller)."""
    q_words, kind = query.stems, query.kind
    s_words = stems(sentence)
    overlap = len(q_words & s_words) / len(q_words) if q_words else 0.0
    novelty = len(s_words - q_words) / len(s_words) if s_words else 0.0
    fits = {"person": 0.0, "time": 0.0, "number": 0.0, "place": 0.0}
    if kind == "number":
        fits[kind] = float(bool(_NUMBER.search(sentence)))
    elif kind == "time":
        fits[kind] = float(bool(_DATE.search(sentence)))
    elif kind == "person":  # a name none of whose words the question already says
        asked = query.tokens
        fits[kind] = float(any(asked.isdisjoint(m.group().lower().split()) for m in _NAME.finditer(sentence)))
    elif kind == "place":
        lowered = query.lowered
        fits[kind] = float(any(m.group().lower() not in lowered for m in _PLACE_OR_NAME.finditer(sentence)))
    return {"overlap": overlap, "novelty": novelty, **fits}


def score_sentences(query: Query, hits: list[Hit]) -> list[tuple[Quote, dict]]:
    """Every sentence of the best passages with its signals and weighted score, best first.

    Sentences the previous answer already quoted (`query.already_said`) are left out: a follow-up
    wants something new.
    """
    already_said = query.already_said
    scored = []
    for n, hit in enumerate(hits[:CANDIDATE_PASSAGES], start=1):
        for sentence in hit.sentences:
            text = hit.passage.text[sentence.start : sentence.end]
            if already_said and text in already_said:
                continue
            signals = features(query, text)
            signals["similarity"] = float(sentence.vector @ query.vector)
            signals["passage"] = hit.score
            score = sum(WEIGHTS[name] * value for name, value in signals.items())
            scored.append((Quote(n, sentence.start, sentence.end, score), signals))
    scored.sort(key=lambda item: item[0].score, reverse=True)
    return scored


def choose_sentences(query: Query, hits: list[Hit]) -> list[Quote]:
    """The sentence(s) of the best passages that answer the question, in the order to quote them.

    For a question about a figure, when an article of another date gives a different figure almost as
    relevant, both are quoted, the newer first: news changes, and the reader should see how.
    """
    ranked = score_sentences(query, hits)
    if not ranked:
        return []
    scored = [quote for quote, _ in ranked]
    best = scored[0]
    kind = query.kind
    if kind == "number":
        rival = _other_dated_figure(best, scored, hits)
        if rival is not None:
            return sorted([best, rival], key=lambda q: hits[q.n - 1].document.published or "", reverse=True)
    chosen = [best]
    following = [(q, signals) for q, signals in ranked if q.n == best.n and q.start > best.start]
    nxt, nxt_signals = min(following, key=lambda item: item[0].start, default=(None, {}))
    if len(scored) > 1 and scored[1].score >= best.score - SECOND_SENTENCE_MARGIN:
        chosen.append(scored[1])
    elif nxt is not None:
        completes = kind is not None and nxt_signals[kind] and not ranked[0][1][kind]
        margin = TYPED_ADJACENT_MARGIN if completes else ADJACENT_MARGIN
        if nxt.score >= best.score - margin:
            chosen.append(nxt)
    # Quote sentences of one passage in reading order, the best passage first.
    return sorted(chosen, key=lambda q: (q.n != best.n, q.n, q.start))


def _figures(hit: Hit, quote: Quote) -> set[str]:
    return {m.group().lower() for m in _NUMBER.finditer(hit.passage.text[quote.start : quote.end])}


def _other_dated_figure(best: Quote, scored: list[Quote], hits: list[Hit]) -> Quote | None:
    """The best sentence from an article of another date that states a different figure, if close."""
    date = hits[best.n - 1].document.published
    figures = _figures(hits[best.n - 1], best)
    if not date or not figures:
        return None
    for quote in scored[1:CONFLICT_RANK]:
        if quote.score < CONFLICT_RATIO * best.score:
            return None
        other = hits[quote.n - 1]
        theirs = _figures(other, quote)
        if other.document.published not in (None, date) and theirs and theirs != figures:
            return quote
    return None


def compose(query: Query, hits: list[Hit], min_score: float, took_ms: float = 0.0) -> Answer:
    """Answer the query from `hits`, or say the documents do not, citing the hits either way."""
    question = query.text
    citations = citations_for(hits)
    # The rule calibrated in docs/benchmarks.md: the best cosine among the passages found.
    if not hits or max(h.score for h in hits) < min_score:
        return Answer(question, NOT_FOUND, False, took_ms, citations)
    quotes = choose_sentences(query, hits)
    if not quotes:
        return Answer(question, NOT_FOUND, False, took_ms, citations)
    dates = {citations[q.n - 1].published for q in quotes}
    dated = len(dates) > 1 and None not in dates  # sources of different dates: say which says what
    text = " ".join(
        (f"Reported {citations[q.n - 1].published}: " if dated else "")
        + f"{citations[q.n - 1].passage[q.start : q.end]} [{q.n}]"
        for q in quotes
    )
    return Answer(question, text, True, took_ms, citations)
