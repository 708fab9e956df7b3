"""text.fold, the one accent fold: what it does, and that answer normalisation (which folds
already case-folded text, after spelling out ligatures) folds exactly as before."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from qa.evaluation.normalize import normalize_answer
from qa.text import fold


def test_fold() -> None:
    assert fold("Corée du Nord, ÉTÉ, Choïgou") == "coree du nord, ete, choigou"
    assert fold("Corée", lower=False) == "Coree"
    assert fold("ﬁn œuvre") == "fin œuvre"  # NFKD spells out ﬁ, not œ (a letter of its own)


def _strip_old(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_fold_is_the_fold_it_replaced(text: str) -> None:
    """The code text.fold replaced, in text.py and in evaluation/normalize.py."""
    assert fold(text) == _strip_old(text.lower())
    assert fold(text, lower=False) == _strip_old(text)


def test_normalised_answers_fold_ligatures() -> None:
    assert normalize_answer("L’Œuvre à Séoul : 3 000 ÉTÉS") == "oeuvre seoul 3000 etes"
    assert normalize_answer("Séoul", fold_accents=False) == "séoul"
