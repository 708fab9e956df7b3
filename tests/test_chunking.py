from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_document, split_sentences
from qa.documents import make_document, read_corpus

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

_alphabet = st.sampled_from([*list("abcdeé’ «»…. .\n\n!?,;:-–ÉA0123 \t"), "Corée ", "date "])
texts = st.lists(_alphabet, min_size=1, max_size=400).map("".join)


def _check(doc_text: str, size: int, overlap: int) -> None:
    doc = make_document("x.txt", doc_text)
    chunks = chunk_document(doc, size=size, overlap=overlap)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.start >= doc.body_start
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    for s in split_sentences(doc):
        assert doc.body_start <= s.start < s.end <= len(doc.text)
        assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end]


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(20, 300), st.integers(0, 19))
def test_offsets_invariant_on_generated_texts(text: str, size: int, overlap: int) -> None:
    _check(text, size, overlap)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Kim a reçu Lavrov. ", "Poutine, Kim.\n\n", "Oui. ", "x "]),
                min_size=1, max_size=60).map("".join),
       st.integers(20, 120), st.integers(0, 60))
def test_offsets_invariant_on_repetitive_texts(text: str, size: int, overlap: int) -> None:
    """Repeated sentences are where a naive forward search picks the wrong copy: offsets stay
    exact, and each chunk adds text past the previous one's end."""
    overlap = min(overlap, size - 1)
    doc = make_document("r.txt", text)
    chunks = chunk_document(doc, size=size, overlap=overlap)
    _check(text, size, overlap)
    for a, b in pairwise(chunks):
        assert b.end > a.end


def test_offsets_invariant_on_the_real_corpus() -> None:
    for doc in read_corpus(CORPUS).documents:
        for size, overlap in [(200, 0), (600, 100), (1000, 200), (4000, 0)]:
            _check(doc.text, size, overlap)


def test_chunks_cover_the_body() -> None:
    """Every non-space character of the body lies in some chunk (nothing is dropped)."""
    for doc in read_corpus(CORPUS).documents:
        chunks = chunk_document(doc, size=600, overlap=100)
        covered = [False] * len(doc.text)
        for c in chunks:
            covered[c.start : c.end] = [True] * (c.end - c.start)
        missing = [i for i in range(doc.body_start, len(doc.text))
                   if not covered[i] and not doc.text[i].isspace()]
        assert missing == []


def test_repeated_paragraphs_get_their_own_offsets() -> None:
    """Eight identical paragraphs: every chunk maps to its own copy and the end is covered
    (a search from 'previous start + 1' would map the second chunk onto the first copy)."""
    paragraph = "Kim Jong-un a reçu Lavrov à Pyongyang. Les deux hommes ont parlé de Koursk.\n\n"
    doc = make_document("dup.txt", paragraph * 8)
    chunks = chunk_document(doc, size=200, overlap=40)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
    assert chunks[-1].end == len(doc.text.rstrip())
    assert all(b.start > a.start for a, b in pairwise(chunks))


def test_large_overlap_on_odd_text_does_not_crash() -> None:
    """Found by review: langchain can emit the same piece twice with overlap close to size."""
    text = "\n\n\n!8\t2X9é -.;4»3\r🚀\n13cc;02’3\t52,Y4-0. 094c0X'd!-,\r\n\n"
    _check(text, 50, 49)


def test_date_prefix_stays_out_of_chunks() -> None:
    doc = make_document("d.txt", " date 2024-03 Les liens anciens. Une phrase de plus.")
    chunks = chunk_document(doc, size=600, overlap=0)
    assert chunks[0].text.startswith("Les liens")


def test_sentence_split_french() -> None:
    """Splits on '. X' and newlines, keeps a lower-case continuation ('missiles. lancées')."""
    text = ("Le 23 octobre 2024, Austin a confirmé l’envoi. Selon Séoul, 3 000 soldats sont là.\n"
            "Elle soutiendra la Russie « jusqu’à la victoire. » Cette déclaration suit.\n"
            "Des activités de missiles. lancées par la Corée du Nord.\n  • Puce numéro un.")
    doc = make_document("s.txt", text)
    got = [text[s.start : s.end] for s in split_sentences(doc)]
    assert got == [
        "Le 23 octobre 2024, Austin a confirmé l’envoi.",
        "Selon Séoul, 3 000 soldats sont là.",
        "Elle soutiendra la Russie « jusqu’à la victoire. »",
        "Cette déclaration suit.",
        "Des activités de missiles. lancées par la Corée du Nord.",
        "Puce numéro un.",
    ]


# 1.4 KB of Pygments' YAML lexer (BSD-2-Clause), as found under /usr/share/doc: the splitter
# emits "context.pos = match.end()\n    return callback" again inside the previous piece, and
# placing it at the later copy used to lose track of the text ("chunk not found").
_REPEATED_TAIL = (
    'turn callback\n'
    '\n'
    'def set_block_scalar_indent(TokenClass):\n'
    '    """Set an explicit indentation level for a block scalar."""\n'
    '    def callback(lexer, match, context):\n'
    '        text = match.group()\n'
    '        context.block_scalar_indent = None\n'
    '        if not text:\n'
    '            return\n'
    '        increment = match.group(1)\n'
    '        if increment:\n'
    '            current_indent = max(context.indent, 0)\n'
    '            increment = int(increment)\n'
    '            context.block_scalar_indent = current_indent + increment\n'
    '        if text:\n'
    '            yield match.start(), TokenClass, text\n'
    '            context.pos = match.end()\n'
    '    return callback\n'
    '\n'
    'def parse_block_scalar_empty_line(IndentTokenClass, ContentTokenClass):\n'
    '    """Process an empty line in a block scalar."""\n'
    '    def callback(lexer, match, context):\n'
    '        text = match.group()\n'
    '        if (context.block_scalar_indent is None or\n'
    '                len(text) <= context.block_scalar_indent):\n'
    '            if text:\n'
    '                yield match.start(), IndentTokenClass, text\n'
    '        else:\n'
    '            indentation = text[:context.block_scalar_indent]\n'
    '            content = text[context.block_scalar_indent:]\n'
    '            yield match.start(), IndentTokenClass, indentation\n'
    '            yield (match.start()+context.block_scalar_indent,\n'
    '                    ContentTokenClass, content)\n'
    '        context.pos = match.end()\n'
    '    return callback\n'
    '\n'
    'def parse_block_scalar_indent(TokenClass'
)


def test_a_fragment_repeated_inside_the_previous_chunk_is_not_misplaced() -> None:
    doc = make_document("yaml.py.txt", _REPEATED_TAIL)
    chunks = chunk_document(doc, size=600, overlap=100)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(ch.isspace() for i, ch in enumerate(doc.text) if i not in covered)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_a_short_repeat_placed_ahead_is_replaced_by_the_piece_it_starts() -> None:
    """Found by the PDF property test: the splitter emits 'aaa' (inside the previous piece),
    which matches further on at the start of the next piece; that piece must still be found,
    and every character stay covered."""
    text = ("a\naa\naa\naa\naa\naaa\naaaaaaaaaaa\naaaaaaaaaaa\naa\naaaaaaaaaaaaaaa\n"
            + "a" * 36 + "\naaa\n\naaa\n" + "a" * 36 + "\naaaaaaaaaaaaaaa\naa\naaaaaaaaaaa\n"
            "aaaaaaaaaaa\naaa\naa\naa\naa\naa\na")
    doc = make_document("x.txt", text)
    chunks = chunk_document(doc, size=60, overlap=10)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)
