"""Candidate sentences -> feature vectors, the input of the learned scorer (scorer.py).

Every signal the answer stage uses to rank sentences is computed here, once per candidate,
as a float: the similarities and overlaps of the old hand-weighted score, the asked kind,
dates, position, boilerplate, listings, definitions, and the block kind and section of a
document with structure (neutral 0.0 without it). Adding a feature means adding a name to
FEATURES, computing it in `_vector`, and refitting (eval/scorer/fit.py).
"""

from __future__ import annotations

import math
import re
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa.answering import short
from qa.answering.kinds import NEWS_KINDS, TECHNICAL_KINDS, Asked, has_kind, sentence_kind
from qa.answering.question import Constraints, date_supported
from qa.answering.source import BlockInfo, TextSource, block_at, block_lead, line_of
from qa.chunking import Span
from qa.retrieval import Passage, Query
from qa.text import fold, tokens

FEATURES: tuple[str, ...] = (
    "dense",  # cosine of the sentence's vector and the question's
    "overlap",  # IDF-weighted share of the question's words in the sentence
    "plain_overlap",  # unweighted share of the question's (matched) words in the sentence
    "kind_present",  # the sentence holds a phrase of the asked kind
    "kind_absent",  # the question asks for a kind the sentence lacks
    "heading",  # a short line without closing punctuation
    "passage_rank",  # 1 / (1 + rank of its passage)
    "passage_score",  # its passage's fused score over the best passage's
    "date_match",  # +1 holds the question's date, -1 does not, 0 no date asked
    "position",  # where in the document it starts (0..1)
    "early",  # within the document's first 300 characters
    "boilerplate",  # copyright, licence, navigation wording
    "repeated",  # its line recurs across documents (log share)
    "clipped",  # cut by its chunk's edge
    "listing_prose",  # a listing/code line, for a question that is not technical
    "listing_technical",  # a listing/code line, for a technical question
    "option_line",  # begins with an option name (man pages' option lists)
    "definition",  # "X is a…" / "X: …" for a "what is X" question
    "anaphora",  # begins with a pronoun: its subject is in the sentence before…
    "anaphora_prev",  # …weighted by the previous sentence's overlap with the question
    "neighbour_overlap",  # best IDF overlap of the sentences before and after
    "length",  # log of its length in characters
    "block_code",  # block kinds (documents with structure; 0 without)
    "block_list",
    "block_definition",
    "block_table",
    "block_note",
    "block_heading",
    "section_overlap",  # IDF-weighted share of the question's words in the heading path
    # The same signals weigh differently when a technical question (command, option, path,
    # package, version, "how do I") reads reference text: the model sees them apart.
    "tech_dense",
    "tech_overlap",
    "tech_heading",
    "tech_passage_score",
    # A date, count or name asked and missing from the sentence rules it out; a technical
    # kind missing (no option in the line) much less: the two weigh apart.
    "news_kind_absent",
    "grows_back",  # the answer takes in the sentence before (see `grown`)
    "grows_on",  # the answer takes in the sentence after
    "lead_in",  # it ends with a colon and its answer takes the items it introduces
    # What a table's caption and header row, a definition's term or a list's lead-in adds to
    # the row's, definition's or item's overlap with the question.
    "lead_gain",
    # Reference text (hard-wrapped lines, listings, fragments) and running prose (a line per
    # paragraph) reward different signals: `wrapped` is the share of the document's lines
    # shorter than 80 characters, and the main signals are seen again scaled by it.
    "wrapped",
    "wrapped_dense",
    "wrapped_overlap",
    "wrapped_kind_present",
    "wrapped_passage_rank",
    "wrapped_heading",
    "wrapped_grows",
)
_WRAPPED = ("dense", "overlap", "kind_present", "passage_rank", "heading")
INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class QuestionView:
    """What the features need of a question, computed once: its prepared query, the IDF
    weight of each of its words, its asked kind and its constraints."""

    query: Query
    weights: tuple[float, ...]
    asked: Asked
    cons: Constraints

    @property
    def total_weight(self) -> float:
        return float(sum(self.weights))

    @property
    def technical(self) -> bool:
        return self.asked.kind in TECHNICAL_KINDS or self.asked.kind == "howto"

    def overlap(self, terms: frozenset[str] | set[str]) -> float:
        total = self.total_weight
        if not total:
            return 0.0
        return sum(w for g, w in zip(self.query.groups, self.weights, strict=True)
                   if g & terms) / total


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage (clipped to the passage), its features and score."""

    score: float
    passage_pos: int
    doc_id: str
    start: int
    end: int
    chunk_id: int
    sentence_id: int
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)),
                                 compare=False, repr=False)
    # The answer it gives: the sentence, grown by a neighbour it cannot stand without.
    answer_start: int = -1
    answer_end: int = -1

    @property
    def span(self) -> tuple[int, int]:
        return (self.start if self.answer_start < 0 else self.answer_start,
                self.end if self.answer_end < 0 else self.answer_end)


_BOILERPLATE = re.compile(
    r"copyright|©|\(c\)\s*\d{4}|all rights reserved|tous droits|licen[cs]ed?\b|licence\b|"
    r"\bgnu (?:general|free|lesser)\b|free software foundation|permission is granted|"
    r"this (?:program|document|manual) is free|without (?:any )?warranty|sans aucune garantie|"
    r"navigation\b|table of contents|table des mati[eè]res|previous\s+(?:page|topic|chapter)|"
    r"next\s+(?:page|topic|chapter)|report a bug|show source|last updated|"
    r"derni[eè]re mise [aà] jour|"
    r"found a bug|^\s*(?:home|accueil|index|search|sommaire)\s*$", re.IGNORECASE | re.MULTILINE)
_SYMBOLS = re.compile(r"[^\w\s]")
_LISTING = re.compile(r"^\s*(?:[$#]|>>>|\.\.\.|%)\s+\S", re.MULTILINE)
_OPTION_START = re.compile(r"^\s*(?:-{1,2}[A-Za-z0-9][\w-]*|[+-][A-Za-z])(?:[ ,=\[]|$)")
_ANAPHORA = re.compile(
    r"^\W*(?:it|its|this|these|those|they|their|such|there|he|she|the (?:first|second|latter|"
    r"former|other)|il|elle|ils|elles|ce|cet|cette|ces|celui|celle|ceux|celles|cela|ceci|"
    r"son|sa|ses|leur|leurs|le premier|la premiere|le second|la seconde|l.un|l.autre)\b",
    re.IGNORECASE)
_BLOCK_FEATURES = {"code": "block_code", "list_item": "block_list", "term": "block_definition",
                   "definition": "block_definition", "table_row": "block_table",
                   "note": "block_note", "heading": "block_heading", "caption": "block_note"}

# Per source object (weakly: a closed index drops its entry; ids are reused), with the
# generation it was computed for.
_REPEATED: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, list[tuple[int, int, int]]]]] = (
    weakref.WeakKeyDictionary())
# Counting repeated lines reads every document once per index generation: a few hundred
# milliseconds for hundreds of documents, too slow above this; the feature is 0 there.
REPEATED_MAX_DOCS = 2_000


def _line_key(line: str) -> str:
    return " ".join(line.split()).lower()


def _lines(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for line in text.split("\n"):
        if 20 <= len(line) <= 1000:
            out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def repeated_lines(source: TextSource) -> dict[str, list[tuple[int, int, int]]]:
    """doc_id -> (start, end, documents holding it) of each of its lines (20+ characters,
    compared without case or spacing) that another document holds too; cached."""
    if source.n_documents > REPEATED_MAX_DOCS:
        return {}
    cached = _REPEATED.get(source)
    if cached is not None and cached[0] == source.generation:
        return cached[1]
    counts: Counter[str] = Counter()
    for doc_id in source.doc_ids():
        text = source.doc(doc_id).text
        counts.update({_line_key(text[s:e]) for s, e in _lines(text)})
    found: dict[str, list[tuple[int, int, int]]] = {}
    for doc_id in source.doc_ids():
        text = source.doc(doc_id).text
        rows = [(s, e, n) for s, e in _lines(text) if (n := counts[_line_key(text[s:e])]) > 1]
        if rows:
            found[doc_id] = rows
    _REPEATED[source] = (source.generation, found)
    return found


_WRAPPED_SHARE: dict[tuple[str, str], float] = {}


def wrapped_share(source: TextSource, doc_id: str) -> float:
    """Share of the document's non-blank lines shorter than 80 characters (cached)."""
    key = (doc_id, str(source.doc_meta(doc_id).get("sha256")))
    found = _WRAPPED_SHARE.get(key)
    if found is None:
        lines = [line for line in source.doc(doc_id).text.splitlines() if line.strip()]
        found = sum(len(line) < 80 for line in lines) / len(lines) if lines else 0.0
        if len(_WRAPPED_SHARE) > 65_536:
            _WRAPPED_SHARE.clear()
        _WRAPPED_SHARE[key] = found
    return found


def is_heading(sentence: str) -> bool:
    """A short line with no closing punctuation: a title or section heading."""
    return len(sentence) < 80 and sentence.rstrip()[-1:] not in ".!?…»\")*:;"


def is_listing(text: str, start: int, end: int) -> bool:
    """A shell/REPL line, or a line mostly of symbols: code, not prose."""
    ls, le = line_of(text, start, end)
    line = text[ls:le]
    if _LISTING.search(line):
        return True
    body = text[start:end]
    return len(body) >= 8 and len(_SYMBOLS.findall(body)) / len(body) > 0.25


# Words one of which every boilerplate pattern holds: most sentences skip the regex.
_BOILER_HINTS = ("copyright", "©", "(c)", "rights", "droits", "licen", "gnu", "foundation",
                 "permission", " free", "warrant", "garantie", "navigation", "contents", "mati",
                 "previous", "next", "bug", "source", "updated", "mise", "home", "accueil",
                 "index", "search", "sommaire")


def is_boilerplate(sentence: str) -> bool:
    low = sentence.lower()
    return any(h in low for h in _BOILER_HINTS) and bool(_BOILERPLATE.search(sentence))


def _definition(sentence: str, subject: str | None) -> bool:
    """'dpkg is a tool…', 'APT est un…', 'venv — creates…': the sentence defines the subject."""
    if not subject:
        return False
    folded = fold(sentence)
    words = re.escape(subject)
    return bool(re.search(
        rf"(?:^|\W)(?:an? |the |le |la |les |l.|un |une )?{words}\W{{0,3}}(?:\([^)]*\)\s*)?"
        r"(?:is|are|was|est|sont|refers to|designe|means|signifie|stands for|[:—–-])\s", folded))


_CLOSED = re.compile(r"[.!?…»\")\]]\s*$")
_TERM_LINE = re.compile(r"^\s*\S[^\n]{0,78}$")


def _term_line(sentence: str) -> bool:
    """A short line without closing punctuation that names what the next line describes:
    '-l, --files-with-matches', 'gc__start(int generation)', 'list.pop([i])'."""
    return bool(_TERM_LINE.match(sentence)) and not _CLOSED.search(sentence) \
        and not sentence.rstrip().endswith(":")


def grown(
    text: str, spans: list[tuple[int, int]], i: int, *, prose: bool = True,
    listing: list[bool] | None = None,
) -> tuple[int, int, bool, bool]:
    """The answer of sentence i of a chunk (spans: its sentences, clipped): the sentence, with
    the one before when it continues it (begins in lower case, or with a pronoun whose subject
    is there) or when that one is the term it describes, and with the one after when it
    breaks off mid-sentence or is itself a term line; for a question in prose (`prose`),
    never into a listing line (`listing`: is_listing of each span, when known already).
    (start, end, grew back, grew on)."""
    lines = listing if listing is not None else [is_listing(text, s, e) for s, e in spans]
    start, end = spans[i]
    sentence = text[start:end]
    back = on = False
    if i > 0 and not (prose and lines[i - 1]):
        prev = text[spans[i - 1][0] : spans[i - 1][1]]
        first = sentence.lstrip()[:1]
        if (first.islower() and not prev.rstrip().endswith((".", "!", "?"))) \
                or _ANAPHORA.match(sentence) or (_term_line(prev) and not _term_line(sentence)):
            start, back = spans[i - 1][0], True
    if i + 1 < len(spans) and not (prose and lines[i + 1]):
        nxt = text[spans[i + 1][0] : spans[i + 1][1]]
        if (not _CLOSED.search(sentence) and nxt.lstrip()[:1].islower()) or (
                _term_line(sentence) and not _term_line(nxt)):
            end, on = spans[i + 1][1], True
    return start, end, back, on


def _text_features(sentence: str) -> tuple[bool, bool, bool]:
    return is_heading(sentence), is_boilerplate(sentence), bool(_OPTION_START.match(sentence))


# Blocks that are units of text though their lines look like code: a table row's cells, an
# option's name, a definition. A code block is a listing whatever it holds.
_NOT_LISTING = frozenset({"table_row", "term", "definition"})
# Blocks a lead-in ("…the following:", "Python versions are numbered A.B.C:") introduces,
# and blocks whose sentences answer together (an item, a definition).
_ITEMS = frozenset({"list_item", "table_row", "definition", "term", "code"})
# A definition answers with its term and all its sentences. A list item does not answer
# whole: in running text an item is a paragraph ("- Le pays est critiqué… Lavrov s'est rendu
# … le 18 octobre."), and the answer would be three sentences where one says it.
_UNITS = frozenset({"definition"})
UNIT_MAX = 400  # characters: a block grown past this is a section, not an answer


def _family(kind: str | None) -> str | None:
    """Terms and definitions alternate in one list: the items a lead-in introduces."""
    return "definition" if kind == "term" else kind


def _listing(text: str, start: int, end: int, block: BlockInfo) -> bool:
    if block.kind == "code":
        return True
    return block.kind not in _NOT_LISTING and is_listing(text, start, end)


@dataclass(frozen=True)
class _Context:
    """A passage's sentences, read once for all its candidates."""

    pos: int
    passage: Passage
    text: str
    body_start: int
    style: float
    repeats: Any
    ids: list[int]
    sims: Any
    full: list[Span]  # the sentences
    spans: list[tuple[int, int]]  # …clipped to the chunk
    blocks: list[BlockInfo]
    listing: list[bool]
    overlaps: list[tuple[frozenset[str], float]]


def _context(source: TextSource, view: QuestionView, pos: int, p: Passage,
             repeated: dict[str, list[tuple[int, int, int]]]) -> _Context:
    c = p.chunk
    doc = source.doc(c.doc_id)
    text = doc.text
    ids = source.sentences_of_chunk(p.chunk_id)
    sims = source.sentence_vectors_of(ids) @ view.query.vector if ids else []
    full = [source.sentence(si) for si in ids]
    spans = [(max(s.start, c.start), min(s.end, c.end)) for s in full]
    blocks = [block_at(source, c.doc_id, a) for a, _ in spans]
    overlaps = []
    for si, s, (a, b) in zip(ids, full, spans, strict=True):
        terms = (source.terms_of_sentence(si) if (a, b) == (s.start, s.end)
                 else frozenset(tokens(text[a:b])))
        overlaps.append((terms, view.overlap(terms)))
    for k, (a, b) in enumerate(spans):
        while a > c.start and text[a - 1] == "-":
            a -= 1  # the sentence splitter trims bullets, and so an option's dash
        spans[k] = (a, b)
    return _Context(pos, p, text, doc.body_start, wrapped_share(source, c.doc_id),
                    repeated.get(c.doc_id, ()), ids, sims, full, spans, blocks,
                    [_listing(text, a, b, k) for (a, b), k in zip(spans, blocks, strict=True)],
                    overlaps)


def answer_unit(ctx: _Context, i: int, *, prose: bool) -> tuple[int, int, bool, bool, bool]:
    """The answer of sentence i: `grown`, then the rest of its definition (its term included),
    or, for a lead-in ending with a colon, the items it introduces; never past UNIT_MAX
    characters. (start, end, grew back, grew on, took items)."""
    start, end, back, on = grown(ctx.text, ctx.spans, i, prose=prose, listing=ctx.listing)
    spans, blocks, n = ctx.spans, ctx.blocks, len(ctx.spans)
    kind, first = blocks[i].kind, blocks[i].start
    if kind in _UNITS or kind == "term":
        j0 = j1 = i
        while j0 > 0 and blocks[j0 - 1].start == first:
            j0 -= 1
        while j1 + 1 < n and (blocks[j1 + 1].start == first or (
                kind == "term" and j1 == i and blocks[j1 + 1].kind == "definition")):
            j1 += 1
        if kind == "definition" and j0 > 0 and blocks[j0 - 1].kind == "term":
            j0 -= 1
        a, b = min(start, spans[j0][0]), max(end, spans[j1][1])
        if b - a <= UNIT_MAX:
            back, on = back or a < start, on or b > end
            start, end = a, b
    items = False
    if ctx.text[spans[i][0] : spans[i][1]].rstrip().endswith(":") and i + 1 < n:
        family = _family(blocks[i + 1].kind)
        j = i
        while j + 1 < n and blocks[j + 1].kind in _ITEMS and blocks[j + 1].start != first \
                and _family(blocks[j + 1].kind) == family \
                and not (prose and ctx.listing[j + 1]) and spans[j + 1][1] - start <= UNIT_MAX:
            j += 1
        if j > i and spans[j][1] > end:
            end, on, items = spans[j][1], True, True
    return start, end, back, on, items


def candidates(
    source: TextSource, view: QuestionView, passages: list[Passage]
) -> list[Candidate]:
    """Every sentence of the passages (12+ characters), with its features; score 0."""
    top_score = max((p.score for p in passages), default=0.0) or 1.0
    repeated = repeated_lines(source)
    out: list[Candidate] = []
    for pos, p in enumerate(passages):
        ctx = _context(source, view, pos, p, repeated)
        c = p.chunk
        for i, si in enumerate(ctx.ids):
            start, end = ctx.spans[i]
            if end - start < 12:
                continue
            x = _vector(source, view, ctx, i, start, end, top_score)
            a_start, a_end, back, on, items = answer_unit(ctx, i, prose=not view.technical)
            x[INDEX["grows_back"]] = float(back)
            x[INDEX["grows_on"]] = float(on)
            x[INDEX["lead_in"]] = float(items)
            x[INDEX["wrapped_grows"]] = ctx.style * float(back or on)
            out.append(Candidate(0.0, pos, c.doc_id, start, end, p.chunk_id, si, x,
                                 min(a_start, start), max(a_end, end)))
    return out


def _vector(source: TextSource, view: QuestionView, ctx: _Context, i: int, start: int,
            end: int, top_score: float) -> np.ndarray:
    """The features of sentence i of a passage, [start, end) (the answer's are set apart)."""
    text, s, block = ctx.text, ctx.full[i], ctx.blocks[i]
    sentence = text[start:end]
    clipped = start > s.start or end < s.end
    terms, overlap = ctx.overlaps[i]
    matched = [g for g in view.query.groups if g]
    x = np.zeros(len(FEATURES))
    x[INDEX["dense"]] = float(ctx.sims[i]) * ((end - start) / (s.end - s.start)
                                              if clipped else 1.0)
    x[INDEX["overlap"]] = overlap
    x[INDEX["plain_overlap"]] = (sum(1 for g in matched if g & terms) / len(matched)
                                 if matched else 0.0)
    wanted = sentence_kind(view.asked.kind)
    if wanted is not None:
        present = has_kind(sentence, wanted)
        x[INDEX["kind_present"]] = float(present)
        x[INDEX["kind_absent"]] = float(not present)
        x[INDEX["news_kind_absent"]] = float(not present and view.asked.kind in NEWS_KINDS)
    heading, boiler, option = _text_features(sentence)
    x[INDEX["heading"]] = float(heading)
    x[INDEX["passage_rank"]] = 1 / (1 + ctx.pos)
    x[INDEX["passage_score"]] = ctx.passage.score / top_score
    if view.cons.dates:
        mentions = short.dates_in(source, ctx.passage.chunk.doc_id, start, end)
        x[INDEX["date_match"]] = 1.0 if any(
            date_supported(qd, mentions) for qd in view.cons.dates) else -1.0
    x[INDEX["position"]] = start / max(len(text), 1)
    x[INDEX["early"]] = float(start - ctx.body_start < 300)
    x[INDEX["boilerplate"]] = float(boiler)
    count = max((n for ls, le, n in ctx.repeats if ls < end and start < le), default=0)
    x[INDEX["repeated"]] = math.log1p(max(count - 1, 0)) / math.log1p(
        max(source.n_documents, 2) - 1)
    x[INDEX["clipped"]] = float(clipped)
    x[INDEX["listing_technical" if view.technical else "listing_prose"]] = float(ctx.listing[i])
    x[INDEX["option_line"]] = float(option)
    x[INDEX["definition"]] = float(view.asked.kind == "definition"
                                   and _definition(sentence, view.asked.subject))
    if _ANAPHORA.match(sentence):
        x[INDEX["anaphora"]] = 1.0
        x[INDEX["anaphora_prev"]] = ctx.overlaps[i - 1][1] if i > 0 else 0.0
    x[INDEX["neighbour_overlap"]] = max(
        [ctx.overlaps[j][1] for j in (i - 1, i + 1) if 0 <= j < len(ctx.overlaps)],
        default=0.0)
    x[INDEX["length"]] = math.log(end - start) / 6
    if block.kind in _BLOCK_FEATURES:
        x[INDEX[_BLOCK_FEATURES[block.kind]]] = 1.0
    if block.section:
        x[INDEX["section_overlap"]] = view.overlap(frozenset(tokens(" ".join(block.section))))
    if block.kind in ("table_row", "definition", "list_item"):
        lead = block_lead(source, ctx.passage.chunk.doc_id, start)
        if lead:
            x[INDEX["lead_gain"]] = view.overlap(terms | frozenset(tokens(lead))) - overlap
    if view.technical:
        for name in ("dense", "overlap", "heading", "passage_score"):
            x[INDEX[f"tech_{name}"]] = x[INDEX[name]]
    x[INDEX["wrapped"]] = ctx.style
    for name in _WRAPPED:
        x[INDEX[f"wrapped_{name}"]] = ctx.style * x[INDEX[name]]
    return x
