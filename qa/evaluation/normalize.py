"""Answer normalisation shared by question checks and metrics."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from qa.text import fold

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'"})
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
# Digit groups: 1-3 digits, then groups of exactly 3 joined by one and the same separator
# (space -- NBSP and narrow NBSP become spaces under NFKC --, comma or period). A separator
# followed by something other than exactly three digits stops the number, so "2024, 3" and
# "1, 2, 300" (comma then space) or "1,5" stay apart, while "3 000", "3,000", "3.000" and
# "10 000 000" all become digits only. "18 100" would also be joined: a rare misreading we accept.
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})([ ,.])(\d{3}(?:\2\d{3})*)(?!\d)(?!\2\d)")
# French elisions (l', d', qu', j', n', s', c', m', t') at the start of a word. "aujourd'hui"
# keeps its d' because no word boundary precedes it; English "n't" and "'s" are unaffected.
_ELISION = re.compile(r"\b(?:qu|[ldjnscmt])'(?=\w)")
_PUNCTUATION = re.compile(r"[^\w\s\ue000]|_")
# Command-line options ("-a", "--recursive") keep their dashes: without them "-a" would be the
# article "a" and vanish (the man-page question set needs them).
_OPTION = re.compile(r"(?<![\w-])(-{1,2})(?=[a-z0-9])")
ARTICLES = frozenset(["le", "la", "les", "un", "une", "des", "du", "de", "the", "a", "an"])


def normalize_answer(text: str, *, fold_accents: bool = True) -> str:
    """Lower-case, drop punctuation, French elisions and articles, join digit groups, fold accents.

    'L’armée a tiré 3 000 obus' and "l'armee a tire 3,000 obus" both give 'armee tire 3000 obus'.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    text = _THOUSANDS.sub(lambda m: m.group(1) + m.group(3).replace(m.group(2), ""), text)
    text = _ELISION.sub("", text)
    if fold_accents:
        # NFKD leaves œ and æ whole (they are letters, not accented ones): spell them out.
        text = fold(text.translate(_LIGATURES), lower=False)
    text = _OPTION.sub(lambda m: "\ue000" * len(m.group(1)), text)
    words = _PUNCTUATION.sub(" ", text).split()
    return " ".join(w for w in words if w not in ARTICLES).replace("\ue000", "-")


def answer_contains(answer: str, accepted: Sequence[str], *, fold_accents: bool = True) -> bool:
    """True when the normalised answer holds a normalised accepted answer, as whole words."""
    padded = f" {normalize_answer(answer, fold_accents=fold_accents)} "
    for gold in accepted:
        norm = normalize_answer(gold, fold_accents=fold_accents)
        if norm and f" {norm} " in padded:
            return True
    return False


def token_f1(answer: str, accepted: Sequence[str], *, fold_accents: bool = True) -> float:
    """SQuAD-style token F1 of the answer, best over the accepted answers (0.0 if none)."""
    pred = normalize_answer(answer, fold_accents=fold_accents).split()
    best = 0.0
    for gold_text in accepted:
        gold = normalize_answer(gold_text, fold_accents=fold_accents).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
