"""Query preparation: a question -> its vector and, for each of its words, the corpus stems
that match it (its own stem, translations through the embedding model, close spellings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.index import Index
from qa.text import content_words, fold, stem


@dataclass(frozen=True)
class Query:
    """A question prepared once: its vector, and for each of its words the corpus stems that
    match it (its own stem, or corpus words it translates to; empty when none does)."""

    text: str
    vector: np.ndarray
    groups: list[frozenset[str]]

    @property
    def terms(self) -> list[str]:
        """All matching stems, for BM25."""
        return sorted(set().union(*self.groups)) if self.groups else []

    @property
    def coverage(self) -> float:
        """Share of the question's words that match the corpus (0..1).

        A French question about this corpus scores near 1; an English one through
        translations, names and cognates. Fusion trusts BM25 in proportion.
        """
        return sum(1 for g in self.groups if g) / len(self.groups) if self.groups else 0.0


# A question word that is not in the corpus is replaced by corpus words whose vectors (same
# multilingual model) are at least this close: 'soldiers' -> soldats 0.91, 'treaty' -> traité
# 0.87, 'fuel' -> combustible 0.88, while 'population' (0.55) or 'recipe' (0.56) match nothing.
TRANSLATION_MIN_SIM = 0.78
TRANSLATIONS_PER_WORD = 2
# Names are spelt differently across languages (Putin/Poutine, Kursk/Koursk, Shoigu/Choïgou):
# for capitalised words, close spellings (difflib ratio) count as the same word.
SPELLING_MIN_RATIO = 0.75
# Words the corpus holds are translated too: in a mixed corpus (French articles among English
# technical pages) "soldiers" is a corpus word, yet the answer says "soldats". Measured with
# the seed articles inside a 10k-document haystack of man pages (eval/questions.jsonl):
# R@5 0.893 -> 0.940, accuracy 0.726 -> 0.774; on the five articles alone R@5 0.952 -> 0.952,
# accuracy 0.869 -> 0.857 (eval/precise.jsonl: 0.789 -> 0.763).
TRANSLATE_PRESENT = True


def prepare(index: Index, question: str) -> Query:
    """Embed the question; match each of its words to corpus stems and their translations."""
    words = content_words(question)
    groups: list[set[str]] = []
    missing: list[int] = []
    for i, (_, word) in enumerate(words):
        s = stem(word)
        present = index.has_term(s)
        groups.append({s} if present else set())
        if (TRANSLATE_PRESENT or not present) and not word.isdigit():
            missing.append(i)
    # One embedding call for the question and its unmatched words together.
    vectors = index.embedder.embed(
        [question] + [words[i][0] for i in missing], kind="query"
    )
    if missing:
        translations = index.translate(
            vectors[1:], per_word=TRANSLATIONS_PER_WORD, min_sim=TRANSLATION_MIN_SIM
        )
        for row, i in enumerate(missing):
            groups[i].update(stem(fold(w)) for w in translations[row])
            surface, folded = words[i]
            if not groups[i] and len(folded) >= 4 and surface[:1].isupper():
                for close in index.close_spellings(folded, n=2, cutoff=SPELLING_MIN_RATIO):
                    groups[i].add(stem(close))
    matched = [frozenset(t for t in g if index.has_term(t)) for g in groups]
    return Query(question, vectors[0], matched)
