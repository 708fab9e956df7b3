"""Reading the question: what it asks for (kind) and what it pins down (constraints).

A near-miss ("Who commanded the North Korean troops in Kursk?") shares the documents'
vocabulary; no similarity score tells it from an answerable question. What tells it is that
no sentence holds both what the question pins down (its names, dates, numbers, rare words)
and a phrase of the kind it asks for. The constraints are read here, once per question,
using the word -> corpus-stem matches that retrieval's `prepare()` already made (so an
English question is checked against French text through the same translations).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from qa import temporal
from qa.answering.kinds import Asked, asked, constraint_kind
from qa.answering.kinds import asked_kind as asked_kind  # re-exported
from qa.answering.source import TextSource
from qa.retrieval import Query
from qa.text import STOPWORDS, content_words, fold

# A question that explicitly asks for a name needs one, whatever else the sentence holds.
_EXPLICIT_NAME = re.compile(
    r"\b(?:comment s.appell?ent|comment s.appelle|quel est le nom|what is the name|name of|"
    r"nom du|nom de|who is|"
    r"who was|qui est|qui etait|who commanded|who leads|who heads|name)\b")
# Words that start questions or stand for the asked thing: never a constraint.
_QUESTION_WORDS = frozenset(fold(w) for w in [
    "when", "quand", "where", "which", "what", "who", "whom", "whose", "why", "how",
    "pourquoi", "comment", "quel", "quelle", "quels", "quelles", "combien", "date", "montant",
    "name", "nom", "type", "kind", "sorte"
])
_MONTHS = frozenset(fold(m) for m in temporal.MONTH_WORDS) | frozenset(
    fold(w) for w in temporal.WEEKDAY_WORDS)


_YEAR_ASKED = re.compile(
    r"\b(?:what year|which year|en quelle annee|depuis quelle annee|in what year|"
    r"quelle annee|de quelle annee)\b")
_DAY_ASKED = re.compile(
    r"\b(?:what day|which day|quel jour|what (?:\w+ )?date|which date|quelle (?:\w+ )?date|"
    r"a quelle date|on what date|date precise|exact date)\b|^date\b|\bdate (?:du|de|of)\b")
# Money questions need a currency in the answer ("425 millions de dollars"), not any number.
_MONEY_ASKED = re.compile(
    r"\b(?:montant|amount|how much money|combien d.argent|how much (?:did|does|will) \w+ cost|"
    r"cout|coute|cost|budget|somme|sum of)\b")
# "combien de soldats", "how many containers": the counted noun comes next.
_COUNTED_FR = re.compile(r"\bcombien\s+(?:de|d['’])\s*([\w-]+)", re.IGNORECASE)
_COUNTED_EN = re.compile(r"\bhow\s+many\s+((?:[\w-]+\s+){0,3}[\w-]+)", re.IGNORECASE)


def counted_word(question: str) -> str | None:
    """The noun a 'how many' question counts: French puts it first ('combien de soldats
    nord-coréens'), English last ('how many artillery shells'); names, adjectives of
    nationality and participles ('people attended') are skipped."""
    m = _COUNTED_FR.search(question)
    if m:
        return m.group(1)
    m = _COUNTED_EN.search(question)
    if not m:
        return None
    head = None
    for word in m.group(1).split():
        if fold(word) in STOPWORDS or word.endswith("ed"):
            break
        if word[:1].isupper() or fold(word) in ("other", "more"):
            continue
        head = word
    return head


_HEAD_FR = re.compile(
    r"\b(?:quel|quelle|quels|quelles|qui est|qui etait|qui était|qui sont)\s+"
    r"(?:(?:le|la|les|l['’])\s*)?([\w-]+)", re.IGNORECASE)
_HEAD_EN = re.compile(r"\b(?:which|what|who is the|who was the)\s+((?:[\w'’-]+\s+){0,3}[\w'’-]+)",
                      re.IGNORECASE)
_KIND_OF = re.compile(r"\b(?:type|sorte|genre|kind|sort)\s+(?:de|d['’]|of)\s*([\w-]+)",
                      re.IGNORECASE)
_NOT_HEADS = frozenset(["est", "etait", "sont", "etaient", "sera", "serait", "type", "kind",
                        "sorte", "genre"])


def head_word(question: str) -> str | None:
    """The noun a 'which X' / 'quel X' question asks about ('region', 'port', 'résolution');
    for 'quel type de combustible', 'what kind of fuel': the noun after it."""
    m = _KIND_OF.search(question)
    if m:
        return m.group(1)
    m = _HEAD_FR.search(question)
    if m and fold(m.group(1)) not in STOPWORDS and fold(m.group(1)) not in _NOT_HEADS:
        return m.group(1)
    m = _HEAD_EN.search(question)
    if not m:
        return None
    head = None
    words = m.group(1).split()
    for i, raw in enumerate(words):
        word = re.sub(r"['’]s$", "", raw)
        if word[:1].isupper():
            continue  # 'UN Security Council resolution': names qualify the head noun
        if fold(word) in STOPWORDS or word.endswith("ed"):
            break
        if head is not None and i + 1 < len(words) and words[i + 1][:1].isupper():
            break  # 'Which Russian minister met Kim': a verb before its object
        head = word
        if word != raw:
            break  # "which resolution's sanctions": the possessive is the asked noun
    return head


def qualifier_words(question: str) -> list[str]:
    """Folded content words that qualify the asked noun: the three after it in French
    ('ministre chinois des Affaires étrangères'), the three before it in English ('Which
    Russian defence minister')."""
    head = head_word(question)
    if head is None:
        return []
    words = re.findall(r"[\w-]+", question)
    folded = [fold(w) for w in words]
    try:
        i = folded.index(fold(head))
    except ValueError:
        return []
    french = bool(_HEAD_FR.search(question)) and not _KIND_OF.search(question)
    span = words[i + 1 : i + 6] if french else words[max(0, i - 3) : i]
    out = []
    for w in span:
        f = fold(w)
        if f in STOPWORDS or f in _QUESTION_WORDS:
            if french and f not in ("de", "des", "du", "d", "la", "l"):
                break
            continue
        out.append(f)
    return out[:3]


def granularity(question: str) -> str | None:
    """'year' or 'day' when a date question says which; None for a plain 'when'."""
    folded = fold(question.strip())
    if _YEAR_ASKED.search(folded):
        return "year"
    if _DAY_ASKED.search(folded):
        return "day"
    return None


@dataclass(frozen=True)
class Term:
    """A word of the question and the corpus stems that match it (maybe none)."""

    surface: str
    group: frozenset[str]
    weight: float


@dataclass(frozen=True)
class QuestionDate:
    text: str
    value: str | None  # ISO, for a date with its year
    month: int | None  # for a month without a year ("the September summit")


@dataclass(frozen=True)
class Constraints:
    kind: str
    explicit_name: bool
    entities: list[list[Term]]  # names (adjacent words: one name), acronyms, numbers
    rare: list[Term]  # content words the corpus holds in few chunks
    dates: list[QuestionDate]
    granularity: str | None = None  # 'year' or 'day' for date questions that say so
    money: bool = False  # a money amount is asked for
    counted: Term | None = None  # what a 'how many' question counts
    head: Term | None = None  # the noun of 'which region', 'quel port'
    qualifiers: tuple[Term, ...] = ()  # words around the head: 'chinois', 'Affaires étrangères'
    kind_of: bool = False  # 'quel type de combustible': the answer qualifies the head noun


# A word found in at most this share of the chunks pins the question down (it is what
# makes "tués" in "combien de soldats tués" more than a topic word).
RARE_SHARE = 0.08


def read_question(
    index: TextSource, query: Query, weights: list[float], *, asked_as: Asked | None = None
) -> Constraints:
    """The constraints of a prepared question (weights: `term_weights`, one per group;
    asked_as: `kinds.asked(question)` when the caller has it already)."""
    question = query.text
    words = content_words(question)
    n = max(index.n_units, 1)  # the statistics doc_freq counts in
    first = re.match(r"\W*(\w+)", question)
    first_word = first.group(1) if first else ""
    entities: list[list[Term]] = []
    rare: list[Term] = []
    terms: dict[str, Term] = {}
    last_end = -2
    date_spans = temporal.find_dates(question, reference=None)
    for (surface, folded), group, weight in zip(words, query.groups, weights, strict=True):
        if folded in _QUESTION_WORDS or folded in _MONTHS:
            continue
        if any(m.start <= question.find(surface) < m.end for m in date_spans):
            continue
        term = Term(surface, group, weight)
        terms[folded] = term
        is_name = (surface[:1].isupper() and surface != first_word) or (
            surface.isupper() and len(surface) > 1)
        at = question.find(surface)
        if surface.isdigit() or is_name:
            # "United States", "Kim Jong-un": adjacent capitalised words are one name,
            # supported when any of its words is.
            if entities and not surface.isdigit() and 0 <= at - last_end <= 1:
                entities[-1].append(term)
            else:
                entities.append([term])
            last_end = at + len(surface)
        elif group and max(index.doc_freq(t) for t in group) <= max(1, RARE_SHARE * n):
            rare.append(term)
    dates = []
    for mention in temporal.find_dates(question, reference=dt.date.today()):
        if mention.relative:
            month = next((num for w in re.findall(r"[\wéû]+", mention.text)
                          if (num := temporal.month_number(w)) is not None), None)
            dates.append(QuestionDate(mention.text, None, month))
        elif mention.value:
            dates.append(QuestionDate(mention.text, mention.value, None))
    kind = constraint_kind((asked_as or asked(question)).kind)
    counted = None
    word = counted_word(question) if kind == "quantity" else None
    if word:
        counted = terms.get(fold(word))
    return Constraints(
        kind, bool(_EXPLICIT_NAME.search(fold(question))), entities, rare, dates,
        granularity=granularity(question) if kind == "date" else None,
        money=kind == "quantity" and bool(_MONEY_ASKED.search(fold(question))),
        counted=counted,
        head=terms.get(fold(head_word(question) or "")),
        qualifiers=tuple(terms[w] for w in qualifier_words(question) if w in terms),
        kind_of=bool(_KIND_OF.search(question)),
    )


def date_supported(qd: QuestionDate, mentions: list[temporal.DateMention]) -> bool:
    """Whether one of the mentions can denote the question's date."""
    for m in mentions:
        if qd.value and m.value and temporal.overlaps(qd.value, m.value):
            return True
        if qd.month and m.value and len(m.value) >= 7 and int(m.value[5:7]) == qd.month:
            return True
        if qd.month and m.value is None and any(
            temporal.month_number(w) == qd.month for w in re.findall(r"\w+", m.text)
        ):
            return True
    return False
