"""Composing an extractive answer: sentences quoted verbatim from the retrieved passages, each cited.

No word of an answer is generated. The composer picks the sentences that best answer the question,
scoring each by meaning (its vector against the question's), by the question words it shares, and by
whether it holds the kind of thing asked for (a name, a date, a figure); then it quotes them with
their `[n]` markers, and with their articles' dates when sources of different dates are quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import mul

from . import confidence
from .documents import page_of
from .query import Query
from .retrieval import SIGNALS, Hit
from .text import date_stems, denies, said_on, stems

NOT_FOUND = (
    "The documents may not say this. The closest passages are listed below, but none of them is likely to "
    "answer the question."
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
# What a sentence the previous answer quoted loses, unless it holds the asked-for kind of thing: enough
# that a new sentence about as relevant wins, not so much that the only answer is hidden. Set by hand.
SAID_PENALTY = 0.15
# What a follow-up's sentence loses, times the share of the conversation's topic terms (`query.context`)
# that neither its passage nor its article's title holds: "Who coined the name?" after a question on
# the Black Death wants the sentence about the Black Death, not an equally apt one about packet
# switching. Tuned on bench/data/followups (bench/tune_followup.py --answers).
OFF_TOPIC_PENALTY = 0.15
SECOND_SENTENCE_MARGIN = 0.04  # a second sentence is quoted when it scores this close to the best
# The sentence after the best one often finishes its thought ("... dismissed Rogozin. The new head
# will be Yuri Borisov."); it is quoted too when it scores this close to the best.
ADJACENT_MARGIN = 0.15
# When the best sentence lacks the kind of thing asked for (no new name for "who", no date for
# "when") and the sentence after it has one, that sentence is quoted too when it scores within this
# margin: the best one gives the context, the next the answer.
TYPED_ADJACENT_MARGIN = 0.3
# A best sentence that opens by pointing back ("It is the fastest growing sector ...", "This theory
# states ...", "His role is to ...") names what it is about in the sentence before, which is quoted too:
# alone it would not say what "it" is, and that is often the very thing asked. Not an "It" that points
# nowhere ("It is estimated that ...", "It was not until ..."), a "This year", "The former president",
# "Her Majesty" or "He-3".
_IT_POINTS_NOWHERE = (
    r"(?:is|was|has been|had been|seems|seemed|appears|appeared)\s+(?:not until|(?:widely |generally |also |now )?"
    r"(?:estimated|believed|thought|said|reported|known|expected|hoped|feared|claimed|argued|suggested|assumed"
    r"|likely|unlikely|possible|impossible|clear|unclear|necessary|important|difficult|easy|hard|true|false))\b"
)
_TIME_WORDS = "year|week|month|day|time|morning|afternoon|evening|night|spring|summer|autumn|fall|winter|decade|century|season"
_POINTS_BACK = re.compile(
    rf"[\s\"'“‘(]*(?:It\b(?!\s+{_IT_POINTS_NOWHERE})|(?:This|That|These|Those)\b(?!\s+(?:{_TIME_WORDS})s?\b)"
    r"|(?:Its|They|Their|Them|His|She|Such)\b|He\b(?![-\d])|Her\b(?!\s+Majesty)"
    r"|The (?:latter|former)(?=,|\s+(?:is|was|are|were|has|had|have|also|became|remains|remained|can|could|would|will)\b))"
)
# A different figure from an article of another date is quoted beside the best one when it is among
# this many best sentences and scores at least this share of the best: the other article's own
# answer to the same question. Set by hand (SQuAD has no dates to tune on); see docs/benchmarks.md.
CONFLICT_RANK = 3
CONFLICT_RATIO = 0.75

# The words that make a sentence hold a date or a figure; the patterns below add the digit forms.
_DATE_WORDS = frozenset(
    "january february march april may june july august september october november december monday "
    "tuesday wednesday thursday friday saturday sunday yesterday today tomorrow".split()
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve dozen hundred thousand million "
    "billion half twice several".split()
)
_DATE_DIGITS = re.compile(r"\b(?:(?:1[5-9]|20)\d\d|\d{1,2}(?:st|nd|rd|th)? century)\b", re.I)
_DATE = re.compile(rf"\b(?:{'|'.join(sorted(_DATE_WORDS))})\b|{_DATE_DIGITS.pattern}", re.I)
_NUMBER = re.compile(rf"\d|\b(?:{'|'.join(sorted(_NUMBER_WORDS))})\b", re.I)
# `_holds_date` and `_holds_number` give the patterns' answers faster on ASCII text: a word matches
# exactly when one of the text's runs of word characters, lowercased, is that word.
_DIGIT = re.compile(r"\d")
_WORD_RUN = re.compile(r"\w+")
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
    read_as: str | None  # the question as the documents spell its words, when they spell one another way
    answer: str
    answered: bool
    confidence: float  # the estimated probability that `answer` is right (service/confidence.py)
    took_ms: float
    citations: list[Citation]


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


def features(query: Query, sentence: str, implied: frozenset[str] = frozenset()) -> dict[str, float]:
    """The lexical signals of one candidate sentence (the embedding ones are added by the caller).

    `implied` are stems the sentence states without writing them: the date of a news sentence that
    says "on Friday" (`text.said_on`).
    """
    q_words, kind = query.stems, query.kind
    s_words = stems(sentence) | implied if implied else stems(sentence)
    shared = len(q_words & s_words)
    signals = {
        "overlap": shared / len(q_words) if q_words else 0.0,
        "novelty": (len(s_words) - shared) / len(s_words) if s_words else 0.0,
        "person": 0.0,
        "time": 0.0,
        "number": 0.0,
        "place": 0.0,
    }
    if kind == "number":
        signals[kind] = float(_holds_number(sentence))
    elif kind == "time":
        signals[kind] = float(_holds_date(sentence))
    elif kind == "person":  # a name none of whose words the question already says
        asked = query.tokens
        signals[kind] = float(
            any(asked.isdisjoint(m.group().lower().split()) for m in _NAME.finditer(sentence))
        )
    elif kind == "place":
        lowered = query.lowered
        signals[kind] = float(
            any(m.group().lower() not in lowered for m in _PLACE_OR_NAME.finditer(sentence))
        )
    return signals


def _holds_number(text: str) -> bool:
    """Whether `_NUMBER` matches `text`: a digit, or a number word (looked up as a word in ASCII text)."""
    if _DIGIT.search(text):
        return True
    if text.isascii():
        return not _NUMBER_WORDS.isdisjoint(_WORD_RUN.findall(text.lower()))
    return _NUMBER.search(text) is not None


def _holds_date(text: str) -> bool:
    """Whether `_DATE` matches `text`; its words are looked up as words in ASCII text, a few times faster."""
    if not text.isascii():
        return _DATE.search(text) is not None
    if not _DATE_WORDS.isdisjoint(_WORD_RUN.findall(text.lower())):
        return True
    return _DIGIT.search(text) is not None and _DATE_DIGITS.search(text) is not None


def score_sentences(query: Query, hits: list[Hit]) -> list[tuple[Quote, dict[str, float]]]:
    """Every sentence of the best passages with its signals and weighted score, best first.

    A sentence the previous answer already quoted (`query.already_said`) loses SAID_PENALTY unless it
    holds the kind of thing the question asks for: a follow-up usually wants something new, but
    "already said" must never hide the one sentence that answers ("Who replaced him?" after an answer
    that named both men; "What are they called?" when the answer named them). A follow-up's sentence
    from a passage off the conversation's topic loses up to OFF_TOPIC_PENALTY.
    """
    already_said, kind, vector = query.already_said, query.kind, query.vector
    topic = stems(query.context)
    dated = query.dated  # only then can a sentence's implied date count
    weights: list[float] = []  # WEIGHTS in the order of the signals, summed in that order
    scored = []
    for n, hit in enumerate(hits[:CANDIDATE_PASSAGES], start=1):
        text_of = hit.passage.text
        missing = topic - stems(text_of) - stems(hit.document.title) if topic else topic
        off_topic = OFF_TOPIC_PENALTY * len(missing) / len(topic) if topic else 0.0
        for sentence in hit.sentences:
            text = text_of[sentence.start : sentence.end]
            signals = features(query, text, said_on(text, hit.document.published) if dated else frozenset())
            said = bool(already_said) and text in already_said and not (kind and signals[kind])
            signals["similarity"] = float(sentence.vector @ vector)
            signals["passage"] = hit.score
            if not weights:
                weights = [WEIGHTS[name] for name in signals]
            score = sum(map(mul, weights, signals.values())) - SAID_PENALTY * said - off_topic
            scored.append((Quote(n, sentence.start, sentence.end, score), signals))
    scored.sort(key=lambda item: item[0].score, reverse=True)
    return scored


def choose_sentences(
    query: Query, hits: list[Hit], ranked: list[tuple[Quote, dict[str, float]]] | None = None
) -> list[Quote]:
    """The sentence(s) of the best passages that answer the question, in the order to quote them.

    For a question about a figure, when an article of another date gives a different figure almost as
    relevant, both are quoted, the newer first: news changes, and the reader should see how.
    `ranked` is `score_sentences(query, hits)`, when the caller has it already.
    """
    if ranked is None:
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
    # The best passage's sentences in reading order: the one before the best and the one after it.
    passage = sorted(((q, signals) for q, signals in ranked if q.n == best.n), key=lambda item: item[0].start)
    at = next(i for i, (q, _) in enumerate(passage) if q is best)
    nxt, nxt_signals = passage[at + 1] if at + 1 < len(passage) else (None, {})
    if len(scored) > 1 and scored[1].score >= best.score - SECOND_SENTENCE_MARGIN:
        chosen.append(scored[1])
    elif nxt is not None:
        completes = kind is not None and nxt_signals[kind] and not ranked[0][1][kind]
        margin = TYPED_ADJACENT_MARGIN if completes else ADJACENT_MARGIN
        if nxt.score >= best.score - margin:
            chosen.append(nxt)
    previous = passage[at - 1][0] if at else None
    if (
        previous
        and previous not in chosen
        and _points_back(query, hits[best.n - 1].passage.text, best, previous)
    ):
        chosen.append(previous)
    # Quote sentences of one passage in reading order, the best passage first.
    return sorted(chosen, key=lambda q: (q.n != best.n, q.n, q.start))


def _points_back(query: Query, text: str, best: Quote, previous: Quote) -> bool:
    """Whether `best` opens by pointing back to `previous`, the sentence before it, so both are quoted.

    Not for a follow-up whose previous answer already said it: the reader has just read it.
    """
    if not _POINTS_BACK.match(text, best.start):
        return False
    return not (query.already_said and text[previous.start : previous.end] in query.already_said)


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


def confidence_signals(
    query: Query, hits: list[Hit], ranked: list[tuple[Quote, dict[str, float]]], quotes: list[Quote]
) -> dict[str, float]:
    """What the confidence model reads: how well the best passage and the quoted sentences fit the query.

    Cosine alone tells "on topic" from "off topic", not "answered" from "not answered"; the signals
    that tell those apart are whether the question's own names and figures appear in the evidence,
    whether the asked-for kind of thing is there, and how clearly the best candidates beat the rest.
    """
    top = hits[0]
    retrieved = dict(zip(SIGNALS, top.signals, strict=True)) if top.signals else {}
    best, best_signals = ranked[0]
    # The article's date is evidence for a month or year the question names (`text.date_stems`).
    dated = query.dated
    passage_words = stems(top.passage.text) | (date_stems(top.document.published) if dated else frozenset())
    sentences = [(hits[q.n - 1], hits[q.n - 1].passage.text[q.start : q.end]) for q in quotes]
    quoted = frozenset().union(*(_said(text, hit.document.published, dated) for hit, text in sentences))
    entities = query.entities
    return {
        "passage_cosine": top.score,
        "best_cosine": max(h.score for h in hits[:CANDIDATE_PASSAGES]),
        "rank_score": top.rank_score,
        "rank_margin": top.rank_score - (hits[1].rank_score if len(hits) > 1 else 0.0),
        "keyword": retrieved.get("keyword", 0.0),
        "coverage": retrieved.get("coverage", 0.0),
        "sentence_similarity": best_signals["similarity"],
        "sentence_score": best.score,
        "sentence_margin": best.score - (ranked[1][0].score if len(ranked) > 1 else 0.0),
        "overlap": best_signals["overlap"],
        "novelty": best_signals["novelty"],
        "typed": float(query.kind is not None),
        "fits": max((s[query.kind] for q, s in ranked if q in quotes), default=0.0) if query.kind else 0.0,
        "has_entities": float(bool(entities)),
        "entities_in_passage": len(entities & passage_words) / len(entities) if entities else 1.0,
        "entities_in_answer": len(entities & quoted) / len(entities) if entities else 1.0,
        "missing_in_passage": float(len(query.stems - passage_words)),
        "question_words": float(len(query.stems)),
        "follow_up": float(bool(query.context)),
        # SQuAD v2's unanswerable questions are often an answerable one turned round by a "not": the
        # sentence that would answer the original then says the plain case.
        "negation_unmet": float(query.negated and not any(denies(text) for _, text in sentences)),
    }


def _said(sentence: str, published: str | None, dated: bool) -> frozenset[str]:
    """The stems a quoted sentence states, with the date it implies when the question names one."""
    return stems(sentence) | said_on(sentence, published) if dated else stems(sentence)


@dataclass(frozen=True)
class Draft:
    """What the documents offer as an answer, before deciding whether it is confident enough to give."""

    text: str  # the quoted sentences with their markers; "" when nothing could be quoted
    citations: list[Citation]
    signals: dict[str, float]  # what the confidence model reads; empty when nothing was quoted


def draft(query: Query, hits: list[Hit]) -> Draft:
    """Quote the sentences that best answer the query, and measure how well they fit it."""
    citations = citations_for(hits)
    ranked = score_sentences(query, hits) if hits else []
    quotes = choose_sentences(query, hits, ranked)
    if not quotes:
        return Draft("", citations, {})
    dates = {citations[q.n - 1].published for q in quotes}
    dated = len(dates) > 1 and None not in dates  # sources of different dates: say which says what
    text = " ".join(
        (f"Reported {citations[q.n - 1].published}: " if dated else "")
        + f"{citations[q.n - 1].passage[q.start : q.end]} [{q.n}]"
        for q in quotes
    )
    return Draft(text, citations, confidence_signals(query, hits, ranked, quotes))


def compose(
    query: Query,
    hits: list[Hit],
    min_confidence: float,
    took_ms: float = 0.0,
    model: confidence.Model | None = None,
) -> Answer:
    """Answer the query from `hits`, or say the documents may not, citing the hits either way.

    The answer is given when its estimated probability of being right (`confidence`) reaches
    `min_confidence`; below that the closest passages are still cited, but nothing is quoted as an answer.
    """
    found = draft(query, hits)
    read_as = query.spelled or None
    if not found.text:
        return Answer(query.text, read_as, NOT_FOUND, False, 0.0, took_ms, found.citations)
    probability = round((model or confidence.load()).probability(found.signals), 4)
    if probability < min_confidence:
        return Answer(query.text, read_as, NOT_FOUND, False, probability, took_ms, found.citations)
    return Answer(query.text, read_as, found.text, True, probability, took_ms, found.citations)
