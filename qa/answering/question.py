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
from qa.index import Index
from qa.retrieval import Query
from qa.text import content_words, fold

_WORD = r"[\w’'-]"
_ASKED = [
    ("date", re.compile(
        r"\b(?:when|quand|what date|which date|quelle date|en quelle annee|what year|which year|"
        r"quel jour|what day|since when|depuis quand|a quelle date|depuis quelle annee|"
        r"in what year|on what date|until when|jusqu.a quand)\b|^date\b|\bdate (?:du|de|of)\b")),
    ("quantity", re.compile(
        r"\b(?:how many|how much|combien|what number|quel nombre|quelle quantite|what amount|"
        r"quel montant|how far|quelle distance|what distance|what share|quelle part|"
        r"what percentage|quel pourcentage|what proportion|quelle proportion)\b|^montant\b")),
    ("place", re.compile(
        r"\b(?:where|in which (?:\w+ )?(?:city|country|region|port|town|province)|"
        r"(?:which|what) (?:city|country|region|port|town|province)|"
        r"dans quelle (?:ville|region|province)|quelle (?:ville|region|province)|quel pays|"
        r"dans quel pays|de quel port|quel port|from which port)\b|(?:^|\s)ou\s")),
    ("organisation", re.compile(
        r"\b(?:which|what|quel|quelle|quels|quelles)\s+(?:\w+\s+){0,2}(?:think tank|agency|"
        r"agence|organisation|organization|institute|institut|intelligence service|"
        r"news agency|company|entreprise|groupe de reflexion|service de renseignement)\b")),
    ("person", re.compile(
        r"\b(?:who|qui|whom|whose|comment s.appelle|quel est le nom|what is the name|name of|"
        r"nom du|nom de|name)\b|(?:which|what|quel|quelle)\s+(?:\w+\s+){0,2}"
        r"(?:minister|ministre|president|leader|dirigeant|expert|chief|general|official|"
        r"prime minister|premier ministre|secretary|secretaire|commander|commandant)\b")),
]
# A question that explicitly asks for a name needs one, whatever else the sentence holds.
_EXPLICIT_NAME = re.compile(
    r"\b(?:comment s.appelle|quel est le nom|what is the name|name of|nom du|nom de|who is|"
    r"who was|qui est|qui etait|who commanded|who leads|who heads|name)\b")
# Words that start questions or stand for the asked thing: never a constraint.
_QUESTION_WORDS = frozenset(fold(w) for w in [
    "when", "quand", "where", "which", "what", "who", "whom", "whose", "why", "how",
    "pourquoi", "comment", "quel", "quelle", "quels", "quelles", "combien", "date", "montant",
    "name", "nom", "type", "kind", "sorte"
])
_MONTHS = frozenset(fold(m) for m in temporal._MONTH_NAMES) | frozenset(
    fold(w) for w in temporal._WEEKDAYS)


def asked_kind(question: str) -> str:
    """date, quantity, place, organisation, person, or other: what the question asks for."""
    folded = fold(question.strip())
    if "où" in question.lower():
        return "place"
    for kind, pattern in _ASKED:
        if pattern.search(folded):
            return kind
    return "other"


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
    entities: list[Term]  # names, acronyms and numbers of the question
    rare: list[Term]  # content words the corpus holds in few chunks
    dates: list[QuestionDate]


# A word found in at most this share of the chunks pins the question down (it is what
# makes "tués" in "combien de soldats tués" more than a topic word).
RARE_SHARE = 0.08


def read_question(index: Index, query: Query, weights: list[float]) -> Constraints:
    """The constraints of a prepared question (weights: `term_weights`, one per group)."""
    question = query.text
    words = content_words(question)
    n = max(index.n_chunks, 1)
    first = re.match(r"\W*(\w+)", question)
    first_word = first.group(1) if first else ""
    entities: list[Term] = []
    rare: list[Term] = []
    date_spans = temporal.find_dates(question, reference=None)
    for (surface, folded), group, weight in zip(words, query.groups, weights, strict=True):
        if folded in _QUESTION_WORDS or folded in _MONTHS:
            continue
        if any(m.start <= question.find(surface) < m.end for m in date_spans):
            continue
        term = Term(surface, group, weight)
        is_name = (surface[:1].isupper() and surface != first_word) or (surface.isupper() \
            and len(surface) > 1)
        if surface.isdigit() or is_name:
            entities.append(term)
        elif group and max(index.doc_freq(t) for t in group) <= max(1, RARE_SHARE * n):
            rare.append(term)
    dates = []
    for m in temporal.find_dates(question, reference=dt.date.today()):
        if m.relative:
            month = next((temporal._month(w) for w in re.findall(r"[\wéû]+", m.text)
                          if w.lower() in temporal._MONTH_NAMES), None)
            dates.append(QuestionDate(m.text, None, month))
        elif m.value:
            dates.append(QuestionDate(m.text, m.value, None))
    kind = asked_kind(question)
    return Constraints(kind, bool(_EXPLICIT_NAME.search(fold(question))), entities, rare, dates)


def date_supported(qd: QuestionDate, mentions: list[temporal.DateMention]) -> bool:
    """Whether one of the mentions can denote the question's date."""
    for m in mentions:
        if qd.value and m.value and temporal.overlaps(qd.value, m.value):
            return True
        if qd.month and m.value and len(m.value) >= 7 and int(m.value[5:7]) == qd.month:
            return True
        if qd.month and m.value is None and any(
            temporal._MONTH_NAMES.get(w.lower()) == qd.month for w in re.findall(r"\w+", m.text)
        ):
            return True
    return False
