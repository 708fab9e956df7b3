"""The learned scorer: asked kinds, technical spans, features, refitting, calibration, and the
hard rules that stay (boilerplate and listings never answer)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from qa.answering import AnswerParams, answer_question, scorer, short
from qa.answering.features import FEATURES, INDEX, QuestionView, candidates, is_boilerplate
from qa.answering.kinds import asked
from qa.answering.pipeline import question_view
from qa.answering.source import NO_BLOCK, TextSource, block_at, block_lead
from qa.documents import Block
from qa.embedding import Embedder, HashEmbedder
from qa.evaluation.calibration import expected_calibration_error, reliability, reliability_png
from qa.evaluation.report import report_markdown, write_markdown
from qa.index import Index, build_index, load_index
from qa.retrieval import prepare, retrieve

ROOT = Path(__file__).resolve().parent.parent


def _fit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scorer_fit", ROOT / "eval/scorer/fit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scorer_fit"] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- asked kinds

@pytest.mark.parametrize(("question", "kind"), [
    ("When did Lavrov visit North Korea?", "date"),
    ("Before its October 2024 launch, when had North Korea last tested an ICBM?", "date"),
    # "when" in a clause does not ask for a date
    ("What exit status does grep return when no lines were selected?", "other"),
    ("When extracting with tar, how do I drop leading directory components?", "howto"),
    ("Combien d'obus la Corée du Nord a-t-elle fournis ?", "quantity"),
    ("Which tar option compresses the archive with xz?", "option"),
    ("Which command lists the installed packages?", "command"),
    ("Quelle commande affiche les paquets installés ?", "command"),
    ("Which file holds the APT sources?", "path"),
    ("Which package provides the venv module?", "package"),
    ("What is the default Python version?", "version"),
    ("How do I make grep print only file names?", "howto"),
    ("What is dpkg?", "definition"),
    ("Qu'est-ce que APT ?", "definition"),
    ("What is the capital of Australia?", "other"),  # not a definition: "the capital of…"
    ("Who won the 2018 FIFA World Cup?", "person"),
    ("Où se trouve Rason ?", "place"),
    ("Why does China care?", "other"),
    ("Which apt-get option just simulates what a command would do?", "option"),
    ("What is another name for the decorate-sort-undecorate idiom?", "other"),
    ("What should I avoid putting in a git tag name?", "other"),
    ("Quel nom porte le niveau d'erreur qui signifie que le système est inutilisable ?",
     "other"),  # "qui" relative, not "who"
    ("Selon Choe Son Hui, qui crée des tensions ?", "person"),
    ("Comment s'appellent les ministres de la délégation ?", "person"),
])
def test_one_detector_for_the_asked_kind(question: str, kind: str) -> None:
    assert asked(question).kind == kind


def test_definition_subject() -> None:
    assert asked("What is a virtual environment?").subject == "virtual environment"


# ------------------------------------------------------------------------- technical spans

def _values(text: str, kind: str) -> list[Any]:
    return [s.value for s in short.technical(text, 0, len(text), kind)]


def test_technical_spans() -> None:
    text = ("Run `apt-get install python3-venv`, then /usr/bin/python3 --version; edit "
            "/etc/apt/sources.list. -l, --files-with-matches Suppress normal output.\n$ dpkg -l")
    assert _values(text, "option") == ["--version", "-l", "--files-with-matches", "-l"]
    assert _values(text, "path") == ["/usr/bin/python3", "/etc/apt/sources.list"]
    assert {"apt-get", "python3-venv", "dpkg"} <= set(_values(text, "command"))


def test_spans_never_cut_a_token() -> None:
    """'6' is not a quantity of 'IPv6', nor '3' the version of '3.38'."""
    text = "IPv6 support arrived with GLib 3.38 and 12 new options."
    values = [s.value for s in short.quantities(text, 0, len(text))]
    assert 6 not in values and 3 not in values and 12 in values
    assert _values(text, "version") == ["3.38"]
    assert short.whole_tokens(text, short.Span(3, 4, "quantity", 6)) is False


# ------------------------------------------------------------------------------- features

class _WithBlocks:
    """A document as the structure issue will give them: text plus blocks."""

    def __init__(self, doc: Any, blocks: tuple[Block, ...]) -> None:
        self._doc, self.blocks = doc, blocks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._doc, name)


class _BlockSource:
    """An index seen through TextSource, whose documents carry the given blocks (one code
    block over the whole text by default; none: as an index built before blocks)."""

    def __init__(self, index: Index, *, blocks: bool = True) -> None:
        self._index, self._blocks = index, blocks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def doc(self, doc_id: str) -> Any:
        d = self._index.doc(doc_id)
        if not self._blocks:
            return _WithBlocks(d, ())
        return _WithBlocks(d, (Block(0, len(d.text), "code", 0, ("Packages", "The tool")),))


def _small_index(tmp_path: Path, embedder: Embedder, files: dict[str, str]) -> Index:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    build_index(corpus, tmp_path / "index", embedder=embedder)
    return load_index(tmp_path / "index", embedder=embedder)


_DOCS = {
    "a.txt": "The apt-get tool installs packages. It reads /etc/apt/sources.list first.\n"
             "Copyright 2006, 2007 Osamu Aoki. This document is licensed under the GPL.\n",
    "b.txt": "dpkg is a low level tool that installs .deb files. It never resolves "
             "dependencies.\nCopyright 2006, 2007 Osamu Aoki. This document is licensed under "
             "the GPL.\n",
    "c.txt": "The football final was played in Paris in 1998 before a large crowd.\n",
}


def test_features_neutral_without_blocks_and_read_with_them(tmp_path: Path) -> None:
    index = _small_index(tmp_path, HashEmbedder(64), _DOCS)
    assert isinstance(index, TextSource)
    assert block_at(index, "a.txt", 3).kind == "paragraph"  # plain text has blocks now
    flat = _BlockSource(index, blocks=False)
    assert block_at(flat, "a.txt", 3) == NO_BLOCK  # type: ignore[arg-type]
    query = prepare(index, "Which tool installs packages?")
    view = question_view(index, query)
    passages = retrieve(index, query, k=5)
    plain = candidates(flat, view, passages)  # type: ignore[arg-type]
    assert plain and all(len(c.features) == len(FEATURES) for c in plain)
    block_cols = [INDEX[n] for n in FEATURES if n.startswith("block_") or n == "section_overlap"]
    assert all(not c.features[block_cols].any() for c in plain)
    structured = candidates(_BlockSource(index), view, passages)  # type: ignore[arg-type]
    assert all(c.features[INDEX["block_code"]] == 1.0 for c in structured)
    assert any(c.features[INDEX["section_overlap"]] > 0 for c in structured)


def test_boilerplate_and_repeated_lines(tmp_path: Path) -> None:
    index = _small_index(tmp_path, HashEmbedder(64), _DOCS)
    assert is_boilerplate("Copyright © 2006, 2007, 2015 Osamu Aoki")
    assert not is_boilerplate("dpkg installs .deb files.")
    view = question_view(index, prepare(index, "Who wrote the football final report?"))
    cands = candidates(index, view, retrieve(index, view.query, k=5))
    copyright_lines = [c for c in cands if "Copyright" in index.doc(c.doc_id).text[c.start:c.end]]
    assert copyright_lines
    assert all(c.features[INDEX["boilerplate"]] == 1.0 for c in copyright_lines)
    assert all(c.features[INDEX["repeated"]] > 0 for c in copyright_lines)


def test_boilerplate_never_answers(tmp_path: Path) -> None:
    """The copyright line answers neither 'who' nor 'when', even off topic."""
    index = _small_index(tmp_path, HashEmbedder(64), _DOCS)
    for question in ("Who wrote it?", "When was it written, 2006 or 2007?",
                     "Who won the football final?"):
        a = answer_question(index, question, k=5)
        assert a.abstained or "Copyright" not in (a.answer or ""), a.answer


def test_listing_never_answers_a_prose_question(tmp_path: Path) -> None:
    index = _small_index(tmp_path, HashEmbedder(64), {
        "d.txt": "Why does the cache grow?\n$ du -sh ~/.cache/pip ~/.cache/qa\n"
                 "The cache grows because every wheel downloaded is kept.\n"})
    a = answer_question(index, "Why does the pip cache grow?", k=3)
    assert a.abstained or "$ du" not in (a.answer or "")


_TOOL_HTML = """<html><head><title>Tool</title></head><body>
<h1>The archive tool</h1>
<p>The archive tool takes these options:</p>
<dl><dt>-x, --extract</dt><dd>Extract files from an archive. It keeps their modes.</dd>
<dt>-c, --create</dt><dd>Create a new archive from the named files.</dd></dl>
<p>Archive versions are numbered A.B.C:</p>
<ul><li>A is the major version number of the format.</li>
<li>B is the minor version number of the format.</li></ul>
<table><caption>Exit codes of the archive tool</caption>
<tr><th>exit code</th><th>meaning</th></tr>
<tr><td>0</td><td>every file was processed</td></tr>
<tr><td>127</td><td>the compressor was not found</td></tr>
</table></body></html>
"""


def test_answer_units_lead_ins_and_tables(tmp_path: Path) -> None:
    """A lead-in ending with a colon answers with the items it introduces (not the table
    after them); a table row is no listing and its header row counts for it; an
    answer keeps an option's dash."""
    index = _small_index(tmp_path, HashEmbedder(64), {"tool.html": _TOOL_HTML})
    text = index.doc("tool.html").text
    assert block_lead(index, "tool.html", text.index("127 ")) == "exit code | meaning"
    assert block_lead(index, "tool.html", text.index("A is the")).endswith("A.B.C:")
    assert block_lead(index, "tool.html", text.index("Archive versions")) == ""
    view = question_view(index, prepare(index, "Which exit code means the compressor is missing?"))
    cands = candidates(index, view, retrieve(index, view.query, k=5))
    by_text = {text[c.start : c.end]: c for c in cands}
    lead = by_text["Archive versions are numbered A.B.C:"]
    answer = text[lead.span[0] : lead.span[1]]
    assert "B is the minor" in answer and "127" not in answer
    assert lead.features[INDEX["lead_in"]] == 1.0
    row = by_text["127 | the compressor was not found"]
    assert row.features[INDEX["listing_prose"]] == 0.0 and row.features[INDEX["lead_gain"]] > 0
    for c in cands:  # spans never cut a token: "-x", not "x"
        start = c.span[0]
        assert start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "-")


_GZIP_MAN = """GZIP(1)                  General Commands Manual                 GZIP(1)

NAME
       gzip - compress or expand files

BUGS
       In some rare cases, the --best option gives worse compression than the
       default compression level (-6).
"""


def test_an_answer_never_starts_in_the_heading_before_it(tmp_path: Path) -> None:
    """'BUGS' is a heading line: short and unpunctuated, it reads like a term line, so the
    paragraph under it grows back to it (features.grown). The answer shown is the paragraph:
    the heading is its section, and the answer keeps the confidence it had."""
    index = _small_index(tmp_path, HashEmbedder(64), {"gzip.txt": _GZIP_MAN})
    text = index.doc("gzip.txt").text
    assert block_at(index, "gzip.txt", text.index("BUGS")).kind == "heading"
    for question in ("What compression level does gzip use by default?",
                     "Which gzip option can give worse compression?"):
        view = question_view(index, prepare(index, question))
        cands = candidates(index, view, retrieve(index, view.query, k=5))
        para = next(c for c in cands if text[c.start : c.end].startswith("In some rare"))
        assert text[para.span[0] : para.span[1]].startswith("BUGS")  # grown, as fitted
        a = answer_question(index, question, params=AnswerParams(threshold=0.0))
        assert a.answer_span is not None and a.answer is not None
        assert a.answer.startswith("In some rare cases"), question
        assert text[a.answer_span.start : a.answer_span.end] == a.answer
        assert a.answer_span.section == "GZIP(1) › BUGS"


# ------------------------------------------------------------------------- scorer and fit

def test_refitting_reproduces_the_shipped_parameters() -> None:
    fit = _fit_module()
    params = fit.fit(fit.load("tuning"))
    shipped = json.loads(scorer.PARAMS_PATH.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(params.to_dict())) == shipped


def test_shipped_parameters_fit_the_features() -> None:
    params = scorer.load_params()
    assert params.ranker.names == FEATURES
    assert 0.0 < params.threshold < 1.0


def test_confidence_is_a_probability_and_the_threshold_decides(tmp_path: Path) -> None:
    index = _small_index(tmp_path, HashEmbedder(64), _DOCS)
    params = scorer.load_params()
    for question in ("Which tool installs packages?", "What is dpkg?", "Who won in Paris?"):
        a = answer_question(index, question, k=3)
        assert 0.0 <= a.confidence <= 1.0
        if not a.abstained:
            assert a.confidence >= params.threshold
        never = scorer.ScorerParams(params.ranker, params.calibrator, 1.01, {})
        assert answer_question(index, question, k=3, scorer_params=never).abstained


# ---------------------------------------------------------------------------- calibration

def _row(conf: float, *, correct: bool, unanswerable: bool = False,
         abstained: bool = False) -> dict[str, Any]:
    return {"confidence": conf, "correct": correct, "unanswerable": unanswerable,
            "abstained": abstained}


def test_reliability_bins_count_known_outcomes_only() -> None:
    rows = [_row(0.95, correct=True), _row(0.91, correct=False), _row(0.15, correct=True,
            unanswerable=True, abstained=True), _row(0.3, correct=False, abstained=True)]
    bins, left_out = reliability(rows)
    assert left_out == 1  # an abstention on an answerable question: outcome unknown
    top = bins[-1]
    assert top.n == 2 and top.observed == 0.5 and top.predicted == pytest.approx(0.93)
    assert bins[1].n == 1 and bins[1].observed == 0.0  # answering it would have been wrong
    assert expected_calibration_error(bins) == pytest.approx((2 * 0.43 + 0.15) / 3)


def test_reliability_png_is_a_png(tmp_path: Path) -> None:
    bins, _ = reliability([_row(0.2 + 0.07 * i, correct=i % 2 == 0) for i in range(10)])
    data = reliability_png(bins)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-12:]
    report = {"format": "qa-eval/1", "config": {"k": 5, "label": "t", "questions_file": "q"},
              "summary": {"overall": {"questions": 1, "answerable": 1, "unanswerable": 0},
                          "by_lang": {}},
              "questions": [dict(_row(0.8, correct=True), id="q1", lang="en", question="?",
                                 answer="a", first_relevant_rank=1)]}
    write_markdown(report, tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "](r.reliability.png)" in text
    assert (tmp_path / "r.reliability.png").read_bytes().startswith(b"\x89PNG")
    assert "Calibration of confidence" in report_markdown(report)


@pytest.mark.slow
def test_calibrated_answers_with_the_real_model(real_index: Index) -> None:
    """The default model: an answerable question is answered with a high probability, an
    off-topic one abstained on with a low one."""
    a = answer_question(real_index, "When did Putin visit Pyongyang?")
    assert not a.abstained and "juin 2024" in (a.answer or "")
    off = answer_question(real_index, "What is the recommended daily intake of vitamin C?")
    assert off.abstained and off.confidence < a.confidence


def test_question_view_weights_once(tmp_path: Path) -> None:
    index = _small_index(tmp_path, HashEmbedder(64), _DOCS)
    view = question_view(index, prepare(index, "Which tool installs packages?"))
    assert isinstance(view, QuestionView)
    assert len(view.weights) == len(view.query.groups)
    assert np.isclose(view.overlap(frozenset().union(*view.query.groups)), 1.0)
