"""Lexical text handling shared by indexing and querying: folding, tokens, stems."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TOKEN = re.compile(r"\w+")
# A word hyphenated across a line break ("gouverne-\nment"), as in hard-wrapped text and
# some PDFs: matched as the whole word. Only when the next line goes on in lower case, so
# "Nord-\nCoréen" and list dashes stay as they are.
_HYPHEN_BREAK = re.compile(r"(?<=\w)-[ \t]*(?:\r\n?|\n)[ \t]*(?=[a-zà-öø-ÿ])")
# Longer "words" (a base64 blob, a line of letters with no space) are not vocabulary: the
# embedder's cost grows with a unit's length, and no question word matches them.
MAX_WORD_CHARS = 40

# French and English function words, folded (no accents). Both languages share one index
# because questions come in either; stems are French Snowball, which also maps most English
# cognates onto the French ones (visit/visite, missile/missiles).
_STOPWORDS = """
a ai aie aient aies ait as au aucun aupres aussi autre aux avaient avais avait avant avec avoir
ayant c ca ce ceci cela celle celles celui ces cet cette ceux chaque comme comment contre d dans
de des deja depuis donc dont du elle elles en encore entre est et etaient etait etant ete etre eu
eux fait faire il ils j je l la le les leur leurs lors lui m ma mais me meme memes mes moi mon
n ne ni nos notre nous on ont ou par parce pas peu peut plus pour pourquoi qu quand que quel
quelle quelles quels qui quoi s sa sans se selon ses si son sont sous sur t ta te tes toi ton
tous tout toute toutes tres tu un une vers vos votre vous y combien ou quoi est-ce
about above after again against all am an and any are aren as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours out over own same
she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself did does many much
""".split()  # noqa: SIM905
STOPWORDS = frozenset(_STOPWORDS)


def for_matching(text: str) -> str:
    """Text as matched (terms, embeddings): words hyphenated across lines rejoined.

    Offsets never index this string; they index the document's text.
    """
    if "-" not in text:
        return text
    return _HYPHEN_BREAK.sub("", text)


# Characters Python does not count as whitespace but that show nothing: a question made only
# of them (a BOM, zero-width spaces, a soft hyphen) is as empty as a blank one.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u180e\u00ad"))


def is_blank(text: str) -> bool:
    """Nothing visible: only whitespace, BOMs and zero-width characters."""
    return not text.translate(_INVISIBLE).strip()


def fold(text: str, *, lower: bool = True) -> str:
    """Lower-case and strip accents ('Corée' -> 'coree'); length may change. The one accent
    fold of `qa`: `lower=False` for text already case-folded (answer normalisation)."""
    decomposed = unicodedata.normalize("NFKD", text.lower() if lower else text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("french")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))  # type: ignore[attr-defined]


def stem(word: str) -> str:
    """French Snowball stem of a folded word."""
    return _stem(word)


def content_words(text: str) -> list[tuple[str, str]]:
    """(surface, folded) for each distinct non-stop word of a question, in order."""
    seen: set[str] = set()
    out = []
    for match in _TOKEN.finditer(text):
        surface = match.group(0)
        word = fold(surface)
        if word in STOPWORDS or word in seen or (len(word) < 2 and not word.isdigit()):
            continue
        seen.add(word)
        out.append((surface, word))
    return out


def vocabulary(texts: list[str]) -> list[str]:
    """Distinct lower-case words (3+ letters, not stop words or numbers) of a corpus, sorted.

    Accents are kept: the embedding model reads 'traité' as treaty, 'traite' as trade.
    """
    words: set[str] = set()
    for text in texts:
        words.update(w for w in _TOKEN.findall(for_matching(text).lower())
                     if 2 < len(w) <= MAX_WORD_CHARS and fold(w) not in STOPWORDS
                     and not w.isdigit())
    return sorted(words)


@lru_cache(maxsize=262144)
def _term(word: str) -> str | None:
    folded = fold(word)
    if folded in STOPWORDS or (len(folded) < 2 and not folded.isdigit()):
        return None
    return _stem(folded)


def tokens(text: str) -> list[str]:
    """Folded, stop-word-free, stemmed tokens for BM25 and lexical overlap."""
    out = []
    for word in _TOKEN.findall(for_matching(text)):
        term = _term(word[:MAX_WORD_CHARS])
        if term is not None:
            out.append(term)
    return out
