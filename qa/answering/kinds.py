"""What a question asks for: one detector for every stage of answering.

The sentence features, the question's constraints and the short answer all read the asked
kind from here (they had three sets of regexes before), and whether a sentence holds a phrase
of that kind (`has_kind`). English and French wordings; the
question is accent-folded first. Kinds:

- news kinds: date, quantity, place, organisation, person;
- technical kinds: command, option, path (a file or folder), package, version;
- howto ("how do I…"): a procedure, answered in technical documents by an option or command;
- definition ("what is X", "qu'est-ce que X"): the answer defines X;
- other: no kind the wording names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.answering import short
from qa.text import fold

KINDS: tuple[str, ...] = (
    "date", "quantity", "place", "organisation", "person", "command", "option", "path",
    "package", "version", "howto", "definition", "other",
)
NEWS_KINDS = frozenset({"date", "quantity", "place", "organisation", "person"})
TECHNICAL_KINDS = frozenset({"command", "option", "path", "package", "version"})

# Order matters: the first pattern that matches names the kind. Technical kinds come first
# ("which option…" is not an organisation, "what version" is not a quantity), the news
# kinds in the order the sentence scorer and the constraints used.
_ASKED: list[tuple[str, re.Pattern[str]]] = [
    ("option", re.compile(
        r"\b(?:which|what|quelle|quel)\s+(?:[\w.-]+\s+){0,2}(?:option|flag|switch|argument)s?\b"
        r"|\b(?:option|flag)s?\s+(?:de|of|to|for|makes?|tells?|lets?|gives?)\b"
        r"|\b(?:quelle|which)\s+(?:[\w.-]+\s+){0,2}(?:option|flag)\b")),
    ("command", re.compile(
        r"\b(?:which|what|quelle|quel)\s+(?:[\w.-]+\s+){0,2}(?:command|commande|"
        r"tool|outil|utility|utilitaire|binary|executable)s?\b"
        r"|\b(?:command|commande)\s+(?:to|pour|that|qui)\b")),
    ("path", re.compile(
        r"\b(?:which|what|quel|quelle|dans quel|in which|in what)\s+(?:[\w.-]+\s+){0,2}"
        r"(?:file|fichier|directory|folder|repertoire|dossier|path|chemin)s?\b"
        r"|\bwhere (?:is|are|does|do|can|should)\b.*\b(?:stored|kept|config\w*|located|saved|"
        r"written|file|files|installed)\b|\bou (?:se trouve|sont|est)\b.*\bfichier")),
    ("package", re.compile(
        r"\b(?:which|what|quel|quelle)\s+(?:[\w.-]+\s+){0,2}(?:package|paquet|paquets|module|"
        r"library|bibliotheque)s?\b")),
    ("version", re.compile(
        r"\b(?:which|what|quelle|quel)\s+(?:\w+\s+){0,4}(?:version|release)\b"
        r"(?!\s+(?:of|de)\s+the\s+(?:file|command))|\bsince (?:which|what) version\b"
        r"|\bdepuis quelle version\b")),
    # "How do I…", "Comment faire pour…": a procedure; in technical documents its answer is
    # most often an option or a command, so its short answer looks for those first.
    ("howto", re.compile(
        r"(?:^\W*|[,;:]\s*)(?:how (?:do|can|should|could|would|might) (?:i|you|one|we)\b|how to\b|"
        r"comment (?:puis-je|peut-on|faire|fait-on|dois-je|doit-on|est-ce qu)|"
        r"que (?:dois-je|faut-il) (?:faire|taper|utiliser))")),
    ("date", re.compile(
        # "when" asks for a date at the head of the question, not in a clause ("what does grep
        # return when no lines match"), nor before a gerund ("When extracting, how…").
        r"(?:^\W*|[,;:]\s*)(?:\w+\s+)?(?:when|quand)\b(?!\s+\w+ing\b)|\b(?:when|quand)\s*\?\s*$"
        r"|\b(?:what (?:\w+ )?date|which date|quelle (?:\w+ )?date|en quelle annee|"
        r"what year|which year|since when|depuis quand|until when|jusqu.a quand|"
        r"quel jour|what day|since when|depuis quand|a quelle date|depuis quelle annee|"
        r"in what year|on what date|until when|jusqu.a quand)\b|^date\b|\bdate (?:du|de|of)\b")),
    ("quantity", re.compile(
        r"\b(?:how many|how much|combien|what number|quel nombre|quelle quantite|what amount|"
        r"quel montant|how far|quelle distance|what distance|what share|quelle part|"
        r"what percentage|quel pourcentage|what proportion|quelle proportion)\b|^montant\b"
        # a measure asked for: "What maximum altitude…", "Quelle était la puissance…"
        r"|\b(?:what|which|quel|quelle)\s+(?:\w+\s+){0,2}(?:altitude|height|hauteur|range|"
        r"portee|distance|speed|vitesse|power|puissance|yield|weight|poids|length|longueur|"
        r"duration|duree|size|taille|population|superficie|area|price|prix|cost|cout)\b"
        r"|\ben (?:kilotonnes|kilometres|km|tonnes|dollars|euros|metres)\b")),
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
        # "qui" at the head of a clause ("Qui est…", "Selon X, qui…", "À qui…"), not a
        # relative pronoun ("le niveau qui signifie…"); "name" of a person, not "another
        # name for", "a tag name".
        r"\b(?:who|whom|whose|comment s.appel\w*|quel est le nom|what is the name|name of|"
        r"nom du|nom de|(?:pm|minister|president|leader|chief) name)\b"
        r"|(?:^\W*|[,;:]\s*)(?:\w+\s+)?qui\b"
        r"|(?:which|what|quel|quelle)\s+(?:\w+\s+){0,2}"
        r"(?:minister|ministre|president|leader|dirigeant|expert|chief|general|official|"
        r"prime minister|premier ministre|secretary|secretaire|commander|commandant)\b")),
    ("definition", re.compile(
        r"^\s*(?:what (?:is|are|does) (?!.*\b(?:of|for|in|de|du|des)\b)(?:an? |the )?"
        r"[\w.-]+(?:\s+[\w.-]+){0,3}\s*(?:mean)?\s*\??\s*$"
        r"|qu.est.ce qu(?:e|.)\s*(?:un |une |le |la |les |l.)?[\w.-]+(?:\s+[\w.-]+){0,3}\s*\??\s*$"
        r"|que (?:signifie|veut dire)\b|what does [\w.-]+ stand for|define\b)")),
]


@dataclass(frozen=True)
class Asked:
    """The asked kind of a question, and the word of the question it asks about (the X of
    'what is X'), when there is one."""

    kind: str
    subject: str | None = None

    @property
    def technical(self) -> bool:
        return self.kind in TECHNICAL_KINDS


_SUBJECT = re.compile(
    r"(?:what (?:is|are|does) (?:an? |the )?|qu.est.ce qu(?:e|.)\s*(?:un |une |le |la |les |l.)?"
    r"|what does |que (?:signifie|veut dire)\s+(?:un |une |le |la |les |l.)?)"
    r"(?P<x>[\w.-]+(?:\s+[\w.-]+){0,3}?)\s*(?:mean|stand for)?\s*\??\s*$")


def asked(question: str) -> Asked:
    """The asked kind of a question (see the module docstring)."""
    folded = fold(question.strip())
    if "où" in question.lower() and not re.search(r"\bfichier", folded):
        return Asked("place")
    for kind, pattern in _ASKED:
        if pattern.search(folded):
            if kind == "definition":
                m = _SUBJECT.search(folded)
                return Asked(kind, m.group("x") if m else None)
            return Asked(kind)
    return Asked("other")


def asked_kind(question: str) -> str:
    """Just the kind of `asked(question)`."""
    return asked(question).kind


# The kinds the constraints (`question.Constraints.kind`) and short answers know how to check:
# a definition or a technical kind is read as "other" there unless short.py has spans for it.
def constraint_kind(kind: str) -> str:
    return kind if kind in NEWS_KINDS or kind in TECHNICAL_KINDS or kind == "howto" \
        else "other"


# What a sentence must hold for the sentence scorer's "asked kind present" feature.
def sentence_kind(kind: str) -> str | None:
    """'date', 'quantity', 'name' or a technical kind; None for kinds a sentence cannot show."""
    if kind in ("person", "organisation"):
        return "name"
    if kind in ("date", "quantity") or kind in TECHNICAL_KINDS:
        return kind
    if kind == "howto":
        return "technical"
    return None


def expected_kind(question: str) -> str | None:
    """What a sentence must show for the question ('date', 'quantity', 'name', a technical
    kind), or None."""
    return sentence_kind(asked_kind(question))


# ------------------------------------------------------------------ asked kind in a sentence

_MONTHS = (
    "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    "january|february|march|april|may|june|july|august|september|october|november|december"
)
_YEAR = r"\b(?:1[89]\d\d|20\d\d)\b"
_DATE = re.compile(rf"{_YEAR}|\b(?:{_MONTHS})\b|\b(?:lundi|mardi|mercredi|jeudi|vendredi|"
                   r"samedi|dimanche|dernier|derniere|hier|semaine)\b")
# A quantity: a number that is neither a year nor a day of a month, or a number word.
_QUANTITY = re.compile(
    rf"(?<![\d-])(?!{_YEAR})\d[\d\u00a0\u202f ,.]*(?!\d)(?!\s*(?:er\s+)?(?:{_MONTHS})\b)"
    r"|\b(?:millions?|milliards?|milliers?|dizaines?|centaines?|douzaines?|vingtaine|"
    r"cinquantaine|mille|moitie|half|thousands?|hundreds?|dozens?)\b"
    # Small number words count, except after an article: "six officiers" is a quantity,
    # "les deux pays" is not.
    r"|(?<!les )(?<!ces )(?<!des )(?<!the )\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|"
    r"douze|vingt|cent|two|three|four|five|six|seven|eight|nine|ten)\b"
)
_NAME = re.compile(r"\b[A-ZÀ-Ý][\wà-ÿ’'-]+(?:[ -][A-ZÀ-Ý][\wà-ÿ’'-]+)+")


def has_kind(sentence: str, kind: str) -> bool:
    """Whether a sentence holds something of the kind a question asks for ('date',
    'quantity', 'name', a technical kind, or 'technical': an option or a command)."""
    if kind == "name":
        return bool(_NAME.search(sentence))
    if kind in TECHNICAL_KINDS or kind == "technical":
        return bool(short.technical(sentence, 0, len(sentence), kind))
    folded = fold(sentence)
    return bool((_DATE if kind == "date" else _QUANTITY).search(folded))
