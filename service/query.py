"""Reading a question once: its words, stems, keyword query, the kind of thing it asks for, its vector,
and what it leans on in the conversation so far.

Retrieval and answer composition both need these; building them here, once per question, keeps every
step below the engine from splitting the question again and from disagreeing about what a follow-up
refers to.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .embedding import Embedder
from .store import Index
from .text import (
    STOPWORDS,
    content_words,
    english_word,
    keyword_terms,
    names_a_date,
    negates,
    plain,
    stem_words,
    stems,
)

# Words that make a question lean on what was said before: personal pronouns, "there", a leading
# "and ...?" or "what about ...?". ("this" and "that" are left out: most questions use them as
# relative words, "the river that ...", and so do questions on a new topic.)
_FOLLOW_UP = re.compile(
    r"\b(he|him|his|she|her|hers|they|them|their|theirs|it|its|there)\b|"
    r"^\s*(and|but|so|what about|how about)\b|"
    # "this" and "that" point back after a verb, a preposition or a wh-word ("Where does that school
    # ...", "in that year"), not after a noun ("the river that flows ..."); "then" at the end means
    # "at that time"; "the main one" stands for something named before.
    r"\b(does|did|do|is|was|are|were|has|had|have|in|on|at|of|for|from|to|by|with|about|after|before|"
    r"during|since|into|than|when|where|what|who|how|why|which)\s+(this|that|these|those)\b|"
    r"\bthen\s*\?*\s*$|\b(the|this|that)(\s+\w+)?\s+ones?\b",
    re.I,
)
# Weaker cues: "the other", "the two", "the rest", "the same", "the latter" and "like that" point back
# to what was just said ("Who got the other half?", "Which of the two pulled out?", "How often do
# hits like that happen?"), but as often not ("the two main segments of the ISS", "the other side of
# the Moon"). They count only in a question that names nothing of its own. "the former" is left out:
# mostly an adjective ("the former head").
_WEAK_FOLLOW_UP = re.compile(
    r"\bthe\s+(other|two|three|both|rest|remaining|same|latter)\b|\blike\s+(that|this|those|these)\b", re.I
)
# A capital that does not open a sentence and is not "I", or a figure: the question names something.
_NAMES = re.compile(r"(?<![.!?]\s)(?<=\s)(?!I\b)[A-Z]|\d")
# Questions about the present: among passages about as relevant, the newer article should win.
_RECENCY = re.compile(
    r"\b(latest|newest|most recent|recent(ly)?|now|nowadays|current(ly)?|today|these days|so far|"
    r"still|any ?more|at present|presently|up to date)\b",
    re.I,
)
# An answer's markers, and the "Reported <date>: " that opens each source's sentences when sources of
# different dates are quoted (`answer.draft`; a date the source did not give as a full date is as written).
_MARKER = re.compile(r"\s*\[\d+\]|(?:^|(?<=\] ))Reported [^:\n\[\]]{1,40}: ")
_CITATION = re.compile(r"\s*\[\d+\]")
_NAME_WORD = re.compile(r"\b[A-Z][\w’'-]*[\w]")
# "he" and "she" point at a person, and the person a conversation has just met is most often the
# one the last answer named ("Who replaced Rogozin?" ... "What was his previous job?").
_PERSON = re.compile(r"\b(he|him|his|she|her|hers)\b", re.I)
_TERM = re.compile(r"[\w’'-]*\w")
_TOKEN = re.compile(r"[\w’'-]+")
# The words worth respelling (`respell`): letters only, five or more; shorter ones have too many
# neighbours one edit away.
_SPELLABLE = re.compile(r"\b[^\W\d_]{5,}\b")
_NUMBER_ASKED = re.compile(r"\bhow (many|much|far|high|long|big|large|old|often|fast)\b")
_TIME_ASKED = re.compile(r"\b(when|what year|which year|what date|what day|what month)\b")
_PERSON_ASKED = re.compile(r"\b(who|whom|whose)\b")
_PLACE_ASKED = re.compile(
    r"\bwhere\b|\b(which|what) (country|countries|nation|city|town|state|region|province|continent|planet)\b"
)

# Follow-ups (bench/tune_followup.py, tuned on bench/data/followups, docs/benchmarks.md): the earlier
# turn's terms that the passages they find share widely are the conversation's topic; they are added
# to the keyword query and, embedded, to the question's vector at CONTEXT_WEIGHT.
TOPIC_DEPTH = 20  # the passages the earlier terms find by keyword, to tell topic from detail
TOPIC_SHARE = 0.3  # a term is the topic when at least this share of those passages holds it
CONTEXT_WEIGHT = 0.25
CARRY_TURNS = 2  # how many earlier follow-ups back a conversation's subject is carried
QUOTED_DEPTH = 5  # the passages searched for the one the last answer quoted
MAX_QUOTE = 4000  # characters: far beyond a sentence of a 256-token passage; longer is not looked up

History = Sequence[dict[str, str]]


@dataclass(frozen=True)
class Query:
    """A question as retrieval and answering read it, built once per question by `analyse` (or `read`)."""

    text: str  # as asked
    vector: np.ndarray  # unit length; for a follow-up, the conversation's topic is blended in
    stems: frozenset[str]  # of the question's own content words
    tokens: frozenset[
        str
    ]  # its words and its context's, lowercased: a name none of whose words are here is new
    entities: frozenset[str]  # stems of its names and figures: what an answer's evidence must mention
    kind: str | None  # what it asks for: person, time, number, place, or None
    search_stems: frozenset[str]  # of the question and its context: what a passage should cover
    keyword: tuple[str, ...]  # the keyword query: content words of the question and its context
    recent: bool  # asks about the present, so newer articles win among equals
    context: str = ""  # the conversation's topic terms it leans on; "" when it stands on its own
    already_said: str = ""  # the previous answer, as the user saw it
    spelled: str = ""  # the question as the documents spell its words (`respell`); "" when unchanged
    dated: bool = False  # names a month or a year (itself or its context): an article's date is evidence
    negated: bool = False  # its own words turn it round ("did not"): only a sentence that does too answers
    # For a follow-up, the passage the last answer quoted first: its article is where the conversation
    # is, and retrieval prefers it (`retrieval.ARTICLE_BONUS`). None for a question on its own.
    follows: int | None = None

    @property
    def lowered(self) -> str:
        return (self.spelled or self.text).lower()


_NO_VECTOR = np.zeros(0, dtype=np.float32)  # a query's vector until the model has given it


def answer_type(question: str) -> str | None:
    """What kind of thing the question asks for, from its wh-word: person, time, number, place."""
    q = question.lower()
    if _NUMBER_ASKED.search(q):
        return "number"
    if _TIME_ASKED.search(q):
        return "time"
    if _PERSON_ASKED.search(q):
        return "person"
    if _PLACE_ASKED.search(q):
        return "place"
    return None


def read(
    question: str,
    vector: np.ndarray,
    *,
    context: str = "",
    already_said: str = "",
    referents: str = "",
    spelled: str = "",
    follows: int | None = None,
) -> Query:
    """A `Query` from a question, its vector and (for a follow-up) its context: the pure part of `analyse`.

    `spelled` is the question as the documents spell it (`respell`): its words are what the question's
    words, names and keyword query are read from. `text` stays as asked.
    """
    words = spelled or question
    own = content_words(words)
    both = own | content_words(context) if context else own
    written = _TOKEN.findall(words)
    own_stems = stem_words(own)
    return Query(
        text=question,
        vector=vector,
        stems=own_stems,
        # A pronoun stands for what the previous turn was about: "Who replaced him?" after an answer
        # about Rogozin asks for a name other than Rogozin's.
        tokens=frozenset(w.lower() for w in written) | frozenset(_TOKEN.findall(referents.lower())),
        entities=stem_words(
            plain(w)
            for i, w in enumerate(written)
            if ((i and w[0].isupper()) or any(c.isdigit() for c in w)) and w.lower() not in STOPWORDS
        ),
        kind=answer_type(words),
        search_stems=stem_words(both) if context else own_stems,
        keyword=keyword_terms(both),
        recent=bool(_RECENCY.search(words) or (context and _RECENCY.search(context))),
        context=context,
        already_said=already_said,
        spelled=spelled if spelled != question else "",
        dated=names_a_date(written + (_TOKEN.findall(context) if context else [])),
        negated=negates(words),
        follows=follows,
    )


def analyse(
    index: Index,
    embedder: Embedder,
    question: str,
    history: History = (),
    weight: float = CONTEXT_WEIGHT,
    share: float = TOPIC_SHARE,
    alongside: Callable[[Query], None] | None = None,
) -> Query:
    """Read `question` in its conversation: find what it leans on, embed it, and build its `Query`.

    The question and the earlier ones are first respelled as the documents spell their words
    (`respell`), so a name written another way ("Roscosmos", "Krikalyov") still finds its passages.
    The rest of the reading, and `alongside` (work that needs the query but not its vector: the
    keyword search), run while the model embeds the question (`Embedder.encode`'s `during`).
    """

    def known(word: str) -> bool:
        return embedder.count_tokens(word) == 1

    spelled = respell(index, question, known)
    if history:
        history = [
            {**turn, "content": respell(index, turn["content"], known)} if turn["role"] == "user" else turn
            for turn in history
        ]
    context = conversation_context(index, spelled, history, share)
    said = _last_exchange(history)[1]
    unread: list[Query] = []

    def read_words() -> None:
        unread.append(
            read(
                question,
                _NO_VECTOR,
                context=context,
                already_said=said,
                referents=referents(history) if context else "",
                spelled=spelled,
                follows=quoted_from(index, said) if context else None,
            )
        )
        if alongside is not None:
            alongside(unread[0])

    if context:
        own, earlier = embedder.encode([spelled, context], during=read_words)
        blended = own + weight * earlier
        vector = (blended / np.linalg.norm(blended)).astype(np.float32)
    else:
        vector = embedder.encode([spelled], during=read_words)[0]
    return replace(unread[0], vector=vector)


def first_quote(answer: str) -> str:
    """An answer's first quoted sentence, as its passage has it: up to the first marker, without the
    "Reported <date>: " a multi-date answer opens with."""
    return _MARKER.sub("", _CITATION.split(answer, maxsplit=1)[0]).strip()


def quoted_from(index: Index, answer: str) -> int | None:
    """The passage that `answer`'s first quoted sentence comes from, or None when no passage holds it.

    iss-qa's answers quote their passages verbatim with a marker after each sentence, so the first
    sentence tells which passage, and so which article, the conversation was in. A keyword search for
    its words finds that passage among the first few. A refusal, a message iss-qa did not write (no
    marker), or a sentence the documents no longer hold finds none.
    """
    if not _CITATION.search(answer):
        return None
    first = first_quote(answer)
    if not first or len(first) > MAX_QUOTE:
        return None
    found = index.keyword_scores(keyword_terms(content_words(first)), QUOTED_DEPTH)
    held = index.held(found)
    return next((pid for pid in found if pid in held and first in held[pid].passage.text), None)


def respell(index: Index, text: str, known: Callable[[str], bool]) -> str:
    """`text` with each word that no passage holds written as the passages write it (`Index.spelled_as`).

    Only words of five letters or more are read, and never a word of English (`text.english_word`)
    or a whole word of the model's vocabulary (`known`): "lender" and "westerly" are words in their
    own right, not other spellings of the "leader" and "western" the passages hold. A replacement is
    written as the passages write it ("McFaul"), in lower case where the question wrote the word so,
    with a capital where it wrote one.
    """

    def replace(match: re.Match[str]) -> str:
        word = match.group()
        if index.holds(word) or english_word(word) or known(word):
            return word
        spelled = index.spelled_as(word)
        if spelled is None:
            return word
        if not word[0].isupper():
            return spelled.lower()
        return spelled if spelled[0].isupper() else spelled[0].upper() + spelled[1:]

    # Composed, so that a letter and its accent typed apart ("i" + "\u0301") are one letter of a word.
    composed = unicodedata.normalize("NFC", text)
    respelled = _SPELLABLE.sub(replace, composed)
    return text if respelled == composed else respelled


def _last_exchange(history: History) -> tuple[str, str]:
    """The last question of the conversation and the answer given to it ("" for what is missing)."""
    question = answer = ""
    for turn in reversed(history):
        if turn["role"] == "assistant" and not answer and not question:
            answer = turn["content"]
        elif turn["role"] == "user":
            question = turn["content"]
            break
    return question, answer


def leans_on_history(question: str) -> bool:
    """Whether `question` reads as a follow-up: a cue word (a pronoun, "there", a leading "and", a
    pointing "that"), fewer than two content words, or a weaker cue ("the other", "like that") in a
    question that names nothing of its own."""
    return (
        bool(_FOLLOW_UP.search(question))
        or len(content_words(question)) < 2
        or bool(_WEAK_FOLLOW_UP.search(question) and not _NAMES.search(question.strip()))
    )


def _before_last_exchange(history: History) -> History:
    """The conversation before its last question (empty when that question opened it)."""
    for i in range(len(history) - 1, -1, -1):
        if history[i]["role"] == "user":
            return history[:i]
    return ()


def earlier_terms(question: str, history: History) -> tuple[list[str], list[str]]:
    """What a follow-up may be leaning on: the last question's words, and the last answer's new names.

    First the content words of the last user question, then the capitalised words of the last answer
    that the last question did not contain; both without the words the new question already has, in
    the order said, without repeats.
    """
    previous, answer = _last_exchange(history)
    previous, answer = previous.strip(), _MARKER.sub("", answer).strip()
    seen = set(content_words(question))

    def new(words: list[str]) -> list[str]:
        out = []
        for word in words:
            key = plain(word)
            if key and key not in seen and key not in STOPWORDS:
                seen.add(key)
                out.append(word)
        return out

    asked = new(_TERM.findall(previous))
    return asked, new(_NAME_WORD.findall(answer))


def topic_terms(
    index: Index, terms: Sequence[str], depth: int = TOPIC_DEPTH, share: float = TOPIC_SHARE
) -> list[str]:
    """The terms that most of the passages they find hold (in text or title): the topic, not detail.

    "Where does the Rhine begin?": the passages about the Rhine far outnumber those about where
    anything begins, so "Rhine" is kept and "begin" is not. A follow-up about another part of the
    article then finds that part, not the passage of the last answer again.
    """
    query = keyword_terms(content_words(" ".join(terms)))
    if not query:
        return []
    found = index.held(index.keyword_scores(query, depth)).values()
    if not found:
        return []
    titles = {d.id: d.title for d in index.documents(h.passage.document_id for h in found).values()}
    held = [h.stems | stems(titles.get(h.passage.document_id, "")) for h in found]
    return [t for t in terms if sum(stems(t) <= words for words in held) >= share * len(held) and stems(t)]


def referents(history: History) -> str:
    """What a pronoun in a follow-up stands for: the last question and the names of the last answer's
    first sentence, the one that answered it ("him" after "Who was dismissed?" is the man dismissed,
    not his successor named in the sentence after)."""
    question, answer = _last_exchange(history)
    first = first_quote(answer)
    return " ".join([question, *_NAME_WORD.findall(first)])


def conversation_context(
    index: Index, question: str, history: History, share: float = TOPIC_SHARE, carry: int = CARRY_TURNS
) -> str:
    """The conversation's topic terms that `question` leans on, or "" when it stands on its own.

    A "he" or "she" also takes every name the last answer introduced, detail or not. Only a
    question that reads as a follow-up (`leans_on_history`) takes anything from the history: a
    question that names its own subject is left exactly as asked, so a new topic is never dragged
    back to the old one.
    """
    if not history or not leans_on_history(question):
        return ""
    asked, named = earlier_terms(question, history)
    # The last question may itself have leaned on the turn before ("When was it launched?"): what it
    # was about is kept (it was judged the topic then), so a third turn still knows its subject.
    before = _before_last_exchange(history)
    carried = (
        conversation_context(index, _last_exchange(history)[0], before, share, carry - 1).split()
        if before and carry
        else []
    )
    topic = topic_terms(index, asked + named, share=share)
    own = content_words(question) | {plain(t) for t in topic}
    topic = [t for t in dict.fromkeys(carried) if plain(t) not in own] + topic
    if _PERSON.search(question):
        topic += [n for n in named if n not in topic]
    return " ".join(topic)
