"""Short answers: the span of the asked kind inside an answer, and its normalised value.

`spans(kind, text, start, end, ...)` lists the phrases of one kind between two offsets of a
document (offsets into the document, never into a copy): dates come from `qa.temporal`
(resolved against the document's reference date), quantities, and capitalised names sorted
into person, place and organisation by the words around them. English and French rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa import temporal
from qa.answering.source import TextSource
from qa.text import STOPWORDS, fold, stem

# ------------------------------------------------------------------------------- quantities

_UNITS_WORDS = {
    "un": 1, "une": 1, "one": 1, "deux": 2, "two": 2, "trois": 3, "three": 3, "quatre": 4,
    "four": 4, "cinq": 5, "five": 5, "six": 6, "sept": 7, "seven": 7, "huit": 8, "eight": 8,
    "neuf": 9, "nine": 9, "dix": 10, "ten": 10, "onze": 11, "eleven": 11, "douze": 12,
    "twelve": 12, "quinze": 15, "fifteen": 15, "vingt": 20, "twenty": 20, "trente": 30,
    "thirty": 30, "quarante": 40, "forty": 40, "cinquante": 50, "fifty": 50, "cent": 100,
    "hundred": 100, "mille": 1000, "thousand": 1000,
}
_MULTIPLIERS = {
    "mille": 1_000, "thousand": 1_000, "thousands": 1_000, "million": 1_000_000,
    "millions": 1_000_000, "milliard": 1_000_000_000, "milliards": 1_000_000_000,
    "billion": 1_000_000_000, "billions": 1_000_000_000,
}
_NUMBER = (
    r"(?<![\w.])(?P<num>\d{1,3}(?:(?P<sep>[ \u00a0\u202f,])\d{3})(?:(?P=sep)\d{3})*"
    r"(?:[.,]\d+)?(?!\d)"
    r"|(?<![\w.])\d+(?:[.,]\d+)?(?![\d\w]|\.\d)"
    rf"|\b(?:{'|'.join(sorted(_UNITS_WORDS, key=len, reverse=True))})\b)"
)
_MODIFIER = (
    r"(?:(?:plus\s+de|moins\s+de|pr[eè]s\s+de|environ|quelque|au\s+moins|jusqu['’]à|"
    r"more\s+than|less\s+than|fewer\s+than|about|nearly|almost|over|some|at\s+least|"
    r"up\s+to|around)\s+)"
)
_QUANTITY = re.compile(
    rf"(?P<mod>{_MODIFIER})?(?P<cur>[$€£]\s?)?{_NUMBER}"
    rf"(?:\s+(?P<mult>{'|'.join(sorted(_MULTIPLIERS, key=len, reverse=True))})\b)?"
    r"(?P<pct>\s*(?:%|pour\s+cent|percent|per\s+cent))?"
    r"(?:\s+(?:(?:de|d['’]|of)\s*)?(?P<unit>(?:autres\s+|other\s+|more\s+)?"
    r"[a-zà-ÿœ][\wà-ÿœ’'-]{2,}))?",
    re.IGNORECASE,
)
# Proportions and vague amounts keep their text as value.
_PROPORTION = re.compile(
    rf"(?:{_MODIFIER})?(?:la\s+moiti[ée]|half|un\s+tiers|a\s+third|un\s+quart|a\s+quarter|"
    r"deux\s+tiers|two\s+thirds|(?:des|plusieurs)\s+(?:dizaines|centaines|milliers|millions)"
    r"(?:\s+de\s+milliers)?|(?:dozens|hundreds|thousands|millions)(?:\s+of)?)"
    r"(?:\s+(?:de\s+|d['’]|of\s+)?(?P<unit>[a-zà-ÿ][\wà-ÿ’'-]{2,}))?",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"(?:\s+(?:de|d[’']|of))?\s*$", re.IGNORECASE)
_ARTICLE_BEFORE = re.compile(r"(?:\b(?:les|des|ces|the|these|those|l['’])\s+)$", re.IGNORECASE)


def quantity_value(match: re.Match[str]) -> int | float:
    """The number a quantity match stands for: '3 000' -> 3000, 'trois millions' -> 3000000."""
    num = match.group("num")
    folded = fold(num)
    if folded in _UNITS_WORDS:
        value: float = _UNITS_WORDS[folded]
    else:
        sep = match.group("sep")
        digits = num.replace(sep, "") if sep else num
        value = float(digits.replace(",", "."))
    mult = match.group("mult")
    if mult:
        value *= _MULTIPLIERS[mult.lower()]
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    value: str | int | float | None


def _quantities(text: str, start: int, end: int, exclude: Sequence[tuple[int, int]]) -> list[Span]:
    part = text[start:end]
    out: list[Span] = []
    taken: list[tuple[int, int]] = []
    for m in _QUANTITY.finditer(part):
        s, e = start + m.start(), start + m.end()
        ns, ne = start + m.start("num"), start + m.end("num")
        if any(a < ne and ns < b for a, b in exclude):
            continue  # the number is part of a date
        num = m.group("num")
        is_word = fold(num) in _UNITS_WORDS
        if is_word:
            if fold(num) in ("un", "une", "one", "cent", "mille") and not m.group("mult"):
                continue  # 'un accord', 'one of': an article, not a count
            if _ARTICLE_BEFORE.search(part[: m.start("num")]) and not m.group("mult"):
                continue  # 'les deux pays'
        elif (not m.group("mult") and not m.group("cur") and not m.group("pct")
              and re.fullmatch(r"(?:19|20)\d\d", num)):
            continue  # a year
        unit = m.group("unit")
        if unit and (fold(unit) in STOPWORDS or fold(unit) in _MONTHS_FOLDED):
            e = start + m.start("unit")
            e = s + len(_TRAILING.sub("", text[s:e]))
        if is_word and not unit and not m.group("mult"):
            continue  # a lone number word is rarely a quantity ('six' in a name)
        out.append(Span(s, e, "quantity", quantity_value(m)))
        taken.append((s, e))
    for m in _PROPORTION.finditer(part):
        s, e = start + m.start(), start + m.end()
        if any(a < e and s < b for a, b in taken):
            continue
        unit = m.group("unit")
        if unit and fold(unit) in STOPWORDS:
            e = start + m.start("unit")
            e = s + len(_TRAILING.sub("", text[s:e]))
        out.append(Span(s, e, "quantity", text[s:e].strip()))
        taken.append((s, e))
    out.sort(key=lambda sp: sp.start)
    return out


_MONTHS_FOLDED = frozenset(fold(m) for m in temporal.MONTH_WORDS)


def quantities(
    text: str, start: int, end: int, exclude: Sequence[tuple[int, int]] = ()
) -> list[Span]:
    """Quantities in text[start:end] (never part of a token: no '6' of 'IPv6')."""
    return [s for s in _quantities(text, start, end, exclude) if whole_tokens(text, s)]

# ------------------------------------------------------------------------------------ names

_CAP = r"[A-ZÀ-ÖØ-Þ][\wà-ÿ’'-]*"
_NAME = re.compile(
    rf"{_CAP}(?:(?:\s+|-)(?:(?:du|de\s+la|de|des|d['’]|of|the|al|bin|van|von|la|le)\s+)?{_CAP})*"
)
_ORG_WORDS = frozenset(fold(w) for w in [
    "institute", "institut", "agency", "agence", "ministere", "ministry", "conseil", "council",
    "organisation", "organization", "nations", "union", "service", "services", "cour", "court",
    "assemblee", "parlement", "parliament", "commission", "fondation", "foundation", "bank",
    "banque", "fonds", "fund", "group", "groupe", "corporation", "company", "societe", "armee",
    "army", "forces", "university", "universite", "kcna", "otan", "nato", "onu", "g7",
    "g20", "apec", "asean"
])
_PLACE_BEFORE = re.compile(
    r"(?:\b(?:à|a|au|aux|en|dans|vers|depuis|de\s+la\s+ville\s+de|ville\s+de|port\s+de|"
    r"région\s+de|province\s+de|in|at|to|from|near|into|of\s+the\s+city\s+of)\s+(?:la\s+|le\s+"
    r"|l['’]|les\s+|the\s+)?)$",
    re.IGNORECASE,
)
_TITLE_WORDS = frozenset(fold(w) for w in [
    "ministre", "minister", "president", "président", "dirigeant", "leader", "expert", "chef",
    "chief", "secretaire", "secretary", "general", "général", "porte-parole", "spokesman",
    "spokeswoman", "ambassadeur", "ambassador", "homologue", "counterpart", "premier", "pm",
    "directeur", "director", "conseiller", "conseillere", "adviser", "advisor", "chercheur",
    "researcher", "m", "mme", "monsieur", "madame", "mr", "mrs", "ms", "dr", "commandant",
    "commander"
])
# Capitalised words that begin sentences or are common nouns in titles, never a name alone.
_NOT_NAMES = frozenset(fold(w) for w in [
    "selon", "cette", "cet", "ce", "ces", "lors", "apres", "avant", "depuis", "pendant",
    "mais", "et", "or", "donc", "ainsi", "enfin", "par", "pour", "sur", "sous", "dans", "en",
    "au", "aux", "le", "la", "les", "un", "une", "des", "du", "de", "il", "elle", "ils",
    "elles", "on", "nous", "vous", "leur", "leurs", "son", "sa", "ses", "the", "a", "an",
    "this", "that", "these", "those", "in", "on", "at", "by", "for", "from", "with", "after",
    "before", "while", "since", "according", "however", "but", "and", "sommaire",
    "plusieurs", "certains", "certaines", "quelques", "tous", "aucun", "chaque", "several",
    "some", "many", "all", "both", "each", "il", "cela",
    "affaires", "etat", "etats", "gouvernement", "government", "parti", "party",
])


def _strip_leading(text: str, s: int, e: int) -> tuple[int, int]:
    """Drop sentence-initial function words from a capitalised run ('Selon Kim' -> 'Kim')."""
    while s < e:
        m = re.match(r"[\wà-ÿ’'-]+", text[s:e])
        if not m:
            break
        word = m.group(0)
        if fold(word) in _NOT_NAMES or fold(word) in STOPWORDS:
            rest = re.match(r"[\wà-ÿ’'-]+\s*", text[s:e])
            assert rest is not None
            s += rest.end()
            continue
        break
    return s, e


def _name_kind(text: str, s: int, e: int, places: frozenset[str]) -> str:
    words = [fold(w) for w in re.findall(r"[\wà-ÿ’']+", text[s:e])]
    surface = text[s:e]
    if re.fullmatch(r"[A-Z]{2,6}\d?", surface) or any(w in _ORG_WORDS for w in words):
        return "organisation"
    # A place is a name the document puts after a locative somewhere ("en Corée du Nord",
    # "à Pyongyang"): the document itself says what kind of name it is.
    if fold(surface) in places or _PLACE_BEFORE.search(text[max(0, s - 40) : s]):
        return "place"
    return "person"


_PLACES_CACHE: dict[int, frozenset[str]] = {}


def _places(text: str) -> frozenset[str]:
    """Names that follow a locative preposition anywhere in the text (folded)."""
    key = hash(text)
    found = _PLACES_CACHE.get(key)
    if found is None:
        out = set()
        for m in _NAME.finditer(text):
            if _PLACE_BEFORE.search(text[max(0, m.start() - 40) : m.start()]):
                s, e = _strip_leading(text, m.start(), m.end())
                if s < e:
                    out.add(fold(text[s:e]))
        found = frozenset(out)
        if len(_PLACES_CACHE) > 4096:
            _PLACES_CACHE.clear()
        _PLACES_CACHE[key] = found
    return found


def _names(
    text: str, start: int, end: int, exclude: Sequence[tuple[int, int]],
    corpus_places: frozenset[str] = frozenset(),
) -> list[Span]:
    out: list[Span] = []
    part = text[start:end]
    places = _places(text) | corpus_places
    for m in _NAME.finditer(part):
        s, e = _strip_leading(text, start + m.start(), start + m.end())
        if s >= e or any(a < e and s < b for a, b in exclude):
            continue
        surface = text[s:e]
        if len(surface) < 2 or fold(surface) in _MONTHS_FOLDED:
            continue
        out.append(Span(s, e, _name_kind(text, s, e, places), surface))
    return out


# ------------------------------------------------------------------------------ technical

# An option: "-l", "--files-with-matches", "--sort=size", "-iname" (find's tests).
_OPTION = re.compile(r"(?<![\w/-])(?:--[A-Za-z][\w-]*(?:=[\w-]+)?|-[A-Za-z][A-Za-z]{0,8}\b"
                     r"|-[A-Za-z0-9](?![\w-]))")
# A path: "/etc/apt/sources.list", "~/.bashrc", "./configure"; a file name with an extension.
_PATH = re.compile(r"(?<![\w/.-])(?:~|\.{1,2})?/(?:[\w.+@-]+/?)+|(?<![\w/.-])~?\.?[\w+-]+"
                   r"(?:\.(?:conf|cfg|list|ini|py|sh|txt|json|ya?ml|toml|d|deb|rc|html|rst|log))\b")
# A version: "3.11", "2.38.1", "12" after the word version.
_VERSION = re.compile(r"(?<![\w.])\d+(?:\.\d+)+(?![\w.]*\d)|(?<=version )\d+\b",
                      re.IGNORECASE)
# A command or package: a lower-case word after a prompt, an install verb or in an inline
# code mark-up; or a word shaped like one ("apt-get", "python3-venv", "dpkg").
_PROMPT = re.compile(r"(?:^|\n)\s*(?:[$#]|>>>)\s+(?P<w>[a-z][\w.+-]*)")
_AFTER_INSTALL = re.compile(r"\b(?:install|installer|remove|purge)\s+(?P<w>[a-z][\w.+-]*[\w+])")
_CODE_WORD = re.compile(r"[`‘“\"«]\s*(?P<w>[a-z][\w.+-]*)(?:\s[^`’”\"»\n]{0,40})?\s*[`’”\"»]")
_SHAPED = re.compile(r"(?<![\w.-])(?P<w>[a-z][a-z0-9]*(?:-[a-z0-9]+)+|[a-z]+[0-9][a-z0-9]*)"
                     r"(?![\w-])")


def whole_tokens(text: str, span: Span) -> bool:
    """Whether a span begins and ends at token edges: never "6" out of "IPv6"."""
    before = text[span.start - 1] if span.start > 0 else " "
    after = text[span.end] if span.end < len(text) else " "
    nxt = text[span.end + 1] if span.end + 1 < len(text) else " "
    return not (before.isalnum() or after.isalnum() or (after in ".," and nxt.isdigit())
                or (before == "." and span.start > 1 and text[span.start - 2].isdigit()))


def technical(text: str, start: int, end: int, kind: str) -> list[Span]:
    """Spans of a technical kind (option, path, version, command, package; 'howto' and
    'technical': options then commands) in text[start:end], in text order."""
    part = text[start:end]
    found: list[Span] = []

    def add(pattern: re.Pattern[str], k: str, group: int | str = 0) -> None:
        for m in pattern.finditer(part):
            s, e = start + m.start(group), start + m.end(group)
            while e > s and text[e - 1] in ".,;:":
                e -= 1  # the sentence's full stop, not the path's
            found.append(Span(s, e, k, text[s:e]))

    if kind in ("option", "howto", "technical"):
        add(_OPTION, "option")
    if kind == "path":
        add(_PATH, "path")
    if kind == "version":
        add(_VERSION, "version")
    if kind in ("command", "package", "howto", "technical"):
        k = "package" if kind == "package" else "command"
        for pattern in (_PROMPT, _AFTER_INSTALL, _CODE_WORD, _SHAPED):
            add(pattern, k, "w")
    seen: set[tuple[int, int]] = set()
    out = []
    for sp in sorted(found, key=lambda sp: sp.start):
        if (sp.start, sp.end) not in seen and whole_tokens(text, sp):
            seen.add((sp.start, sp.end))
            out.append(sp)
    return out


# ------------------------------------------------------------------------------- documents

_DATE_CACHE: dict[tuple[str, str], list[temporal.DateMention]] = {}


def document_reference(index: TextSource, doc_id: str) -> temporal.ReferenceDate | None:
    """The document's reference date: metadata, else inferred from its text (cached)."""
    meta = index.doc_meta(doc_id)
    return temporal.reference_date(
        str(meta.get("sha256") or doc_id), meta.get("date"), lambda: index.doc(doc_id).text
    )


def document_dates(index: TextSource, doc_id: str) -> list[temporal.DateMention]:
    """Every date mention of a document, resolved against its reference date (cached)."""
    meta = index.doc_meta(doc_id)
    key = (doc_id, str(meta.get("sha256")))
    found = _DATE_CACHE.get(key)
    if found is None:
        ref = document_reference(index, doc_id)
        if ref is not None and ref.lower_bound:
            found = temporal.find_dates(index.doc(doc_id).text, after=ref.date)
        else:
            found = temporal.find_dates(index.doc(doc_id).text,
                                        reference=ref.date if ref else None)
        if len(_DATE_CACHE) > 4096:
            _DATE_CACHE.clear()
        _DATE_CACHE[key] = found
    return found


def dates_in(index: TextSource, doc_id: str, start: int, end: int) -> list[temporal.DateMention]:
    return [m for m in document_dates(index, doc_id) if start <= m.start and m.end <= end]


_CORPUS_PLACES: dict[tuple[int, object], frozenset[str]] = {}
# Reading every document for its place names costs one pass over the corpus on the first
# question: fine for a few hundred articles, minutes for an archive. Above this many documents
# only the answering document's own places are used (the rest would need an index-time list).
CORPUS_PLACES_MAX_DOCS = 1_000


def corpus_places(index: TextSource) -> frozenset[str]:
    """Names any document of the index puts after a locative (cached per index generation);
    empty for an index of more than CORPUS_PLACES_MAX_DOCS documents."""
    if index.n_documents > CORPUS_PLACES_MAX_DOCS:
        return frozenset()
    key = (id(index), index.generation)
    found = _CORPUS_PLACES.get(key)
    if found is None:
        found = frozenset().union(*(_places(index.doc(d).text) for d in index.doc_ids()))
        _CORPUS_PLACES.clear()
        _CORPUS_PLACES[key] = found
    return found


def spans(
    index: TextSource, doc_id: str, start: int, end: int, kind: str
) -> list[Span]:
    """Spans of one kind in document text[start:end], in text order."""
    dates = dates_in(index, doc_id, start, end)
    if kind == "date":
        return [Span(m.start, m.end, "date", m.value) for m in dates]
    text = index.doc(doc_id).text
    if kind == "quantity":
        return quantities(text, start, end, [(m.start, m.end) for m in dates])
    if kind in ("person", "place", "organisation"):
        found = _names(text, start, end, [(m.start, m.end) for m in dates],
                       corpus_places(index))
        return [s for s in found if s.kind == kind and whole_tokens(text, s)]
    if kind in ("option", "path", "version", "command", "package", "howto", "technical"):
        return technical(text, start, end, kind)
    return []


def names(index: TextSource, doc_id: str, start: int, end: int) -> list[Span]:
    """Capitalised names of any kind in document text[start:end]."""
    dates = dates_in(index, doc_id, start, end)
    return _names(index.doc(doc_id).text, start, end, [(m.start, m.end) for m in dates])


def stems_of(text: str) -> set[str]:
    return {stem(fold(w)) for w in re.findall(r"\w+", text)}


_CLAUSE_BREAK = re.compile(r"[,;:()«»\"“”—–]|\s-\s|\.(?:\s|$)")
_WORDS = re.compile(r"[\wà-ÿœ’'-]+")
MAX_PHRASE_WORDS = 8
# Scoring of candidate phrases, chosen on both tuning sets: a phrase right after the
# question's words (the object of its verb) wins, then a later one (objects follow verbs in
# French and English); length counts up to three words. Short answer holds an accepted
# answer 0.66 / 0.76 (exact 0.51 / 0.61) against 0.59 / 0.71 for "the longest run". Longer
# phrases hold more answers (0.71 with ten words) only by being less short: eight is the cap.
PHRASE_CAP, PHRASE_GAP, PHRASE_AFTER, PHRASE_LATE = 3, 40.0, 2.0, 0.5


def novel_phrase(
    text: str, start: int, end: int, wanted: set[str], *, hits: Sequence[int]
) -> Span | None:
    """For questions of no typed kind ("What did the G7 condemn?"): a run of at most eight
    words, within one clause, that the question does not already say, right after (else
    next to) words it does say.

    'Les ministres … du G7 … ont « fermement condamné » le programme de missiles balistiques
    de la Corée du Nord' -> 'le programme de missiles balistiques'. None without such a run.
    """
    if not hits:
        return None
    best: tuple[float, int, int] | None = None
    run: list[re.Match[str]] = []

    def close() -> None:
        nonlocal best
        after = any(0 <= start + run[0].start() - h <= 40 for h in hits) if run else False
        # keep at most MAX_PHRASE_WORDS words, on the side next to the question's words
        if len(run) > MAX_PHRASE_WORDS:
            run[:] = run[:MAX_PHRASE_WORDS] if after else run[-MAX_PHRASE_WORDS:]
        while run and fold(run[-1].group(0)) in STOPWORDS:
            run.pop()
        while run and fold(run[0].group(0)) in STOPWORDS:
            run.pop(0)
        words = [w for w in run if fold(w.group(0)) not in STOPWORDS]
        if not words:
            return
        s, e = start + run[0].start(), start + run[-1].end()
        gap = min(min(abs(h - s), abs(h - e)) for h in hits)
        if gap > 40:  # not next to the question's words: about something else
            return
        after = any(0 <= s - h <= 40 for h in hits)
        score = min(len(words), PHRASE_CAP) - gap / PHRASE_GAP + PHRASE_AFTER * after \
            + PHRASE_LATE * (s - start) / max(end - start, 1)
        if best is None or score > best[0]:
            best = (score, s, e)

    part = text[start:end]
    pos = 0
    for m in _WORDS.finditer(part):
        if _CLAUSE_BREAK.search(part[pos : m.start()]):
            close()
            run = []
        pos = m.end()
        if stem(fold(m.group(0))) in wanted:
            close()
            run = []
            continue
        run.append(m)

    close()
    if best is None:
        return None
    _, s, e = best
    return Span(s, e, "other", text[s:e])


_HEADED = re.compile(r"[\wà-ÿ’'-]+(?:\s+(?:de\s+|d['’]|n°\s*|no\.?\s*)?)"
                     r"(?P<x>\d[\d\s]*\d|\d|[A-ZÀ-Ý][\wà-ÿ’'-]+(?:\s+[A-ZÀ-Ý][\wà-ÿ’'-]+)*)")


def headed_name(text: str, start: int, end: int, head: frozenset[str]) -> Span | None:
    """'résolution 1718', 'le port de Rason': the asked noun followed by its name or number."""
    part = text[start:end]
    for m in re.finditer(r"[\wà-ÿ’'-]+", part):
        if stem(fold(m.group(0))) not in head:
            continue
        h = _HEADED.match(part, m.start())
        if h and h.start() == m.start():
            s, e = start + h.start(), start + h.end()
            return Span(s, e, "other", text[s:e])
    return None


def qualified_head(text: str, start: int, end: int, head: frozenset[str]) -> Span | None:
    """'combustible solide' for 'quel type de combustible': the asked noun and the words that
    qualify it (up to three, within the clause, lower-case)."""
    part = text[start:end]
    words = list(_WORDS.finditer(part))
    for i, m in enumerate(words):
        if stem(fold(m.group(0))) not in head:
            continue
        last = None
        for w in words[i + 1 : i + 4]:
            gap = part[(last or m).end() : w.start()]
            if _CLAUSE_BREAK.search(gap) or not w.group(0)[:1].islower():
                break
            last = w
        while last is not None and fold(last.group(0)) in STOPWORDS:
            j = words.index(last)
            last = words[j - 1] if j - 1 > i else None
        if last is not None:
            s, e = start + m.start(), start + last.end()
            return Span(s, e, "other", text[s:e])
    return None
