"""qa eval: normaliser, metrics on hand-worked examples, the randomization test, question-file
validation, the service client, and the command itself."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from qa import evaluation as ev
from qa.cli import cli
from qa.errors import QAError, QuestionSetError

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------- normaliser


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("L’armée", "l'armee"),  # typographic vs ASCII apostrophe, elision, accent, case
        ("« jusqu’à la victoire »", 'jusqu\'a la "victoire"'),  # guillemets vs quotes
        ("d’armes", "armes"),
        ("qu’il", "il"),
        ("c’est", "est"),
        ("The Royal United Services Institute", "royal united services institute"),
        ("les États-Unis", "etats unis"),
        ("Kim Jong-un", "Kim Jong Un"),
        ("fin – août", "fin août"),  # en dash
        ("cœur", "coeur"),
    ],
)
def test_normalize_french_and_english_alike(a: str, b: str) -> None:
    assert ev.normalize_answer(a) == ev.normalize_answer(b)


def test_normalize_exact_output() -> None:
    assert ev.normalize_answer("L’armée a tiré 3 000 obus !") == "armee tire 3000 obus"
    assert ev.normalize_answer("aujourd’hui") == "aujourd hui"  # not an elision
    assert ev.normalize_answer("The U.S. isn't") == "u s isn t"


def test_accent_folding_is_optional() -> None:
    assert ev.normalize_answer("Corée") == "coree"
    assert ev.normalize_answer("Corée", fold_accents=False) == "corée"


@pytest.mark.parametrize(
    "written", ["3 000", "3\u00a0000", "3\u202f000", "3000", "3,000", "3.000"]
)
def test_thousands_written_any_way(written: str) -> None:
    assert ev.normalize_answer(f"{written} soldats") == "3000 soldats"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 000 000", "10000000"),
        ("2024, 3", "2024 3"),  # a list, not a number: the separator is two characters
        ("1, 2, 300", "1 2 300"),
        ("1,5", "1 5"),  # a French decimal comma, not a thousands group
        ("2019 2020", "2019 2020"),  # four-digit groups are never joined
        ("1 234 56", "1 234 56"),  # a broken last group stops the join
        ("3 000,5 km", "3000 5 km"),
    ],
)
def test_thousands_rule_leaves_other_numbers(text: str, expected: str) -> None:
    assert ev.normalize_answer(text) == expected


def test_accuracy_is_whole_word_containment() -> None:
    sentence = "Les ministres du G7 réunis à Tokyo en début de semaine."
    assert ev.answer_contains(sentence, ["Paris", "Tokyo"])
    assert not ev.answer_contains(sentence, ["Tok"])
    assert ev.answer_contains("Selon Séoul, 3 000 soldats sont en Russie.", ["3,000 soldats"])


def test_token_f1_worked_example() -> None:
    """pred 'le programme de missiles balistiques' -> [programme, missiles, balistiques];
    gold 'programme balistique' -> [programme, balistique]. One common token:
    P = 1/3, R = 1/2, F1 = 2PR/(P+R) = (1/3)/(5/6) = 0.4. The best gold wins."""
    pred = "le programme de missiles balistiques"
    assert ev.token_f1(pred, ["programme balistique"]) == pytest.approx(0.4)
    assert ev.token_f1(pred, ["programme balistique", "missiles balistiques"]) == pytest.approx(
        0.8)  # P = 2/3, R = 1 -> 0.8
    assert ev.token_f1(pred, ["Tokyo"]) == 0.0


# ---------------------------------------------------------------------------- metrics

DOCS = {
    "a.txt": "x" * 100 + "EVIDENCE-A" + "y" * 40 + " more text " * 10,
    "b.txt": "EVIDENCE-B and the rest of b",
}


def _question(qid: str, evidence: list[Any], **kw: Any) -> ev.Question:
    line = json.dumps({"id": qid, "question": f"question {qid}?", "answers": ["right"],
                       "evidence": evidence, **kw})
    return ev.locate_evidence(ev.parse_questions(line), DOCS)[0]


def _cite(doc_id: str, start: int, end: int) -> dict[str, Any]:
    return {"rank": 0, "doc_id": doc_id, "start": start, "end": end, "text": "", "score": 0.0}


def test_ranking_metrics_worked_example() -> None:
    """Evidence A is a.txt[100:110], evidence B is b.txt[0:10]: two units.

    rank 1  a.txt[0:100)    ends where A starts: half-open, not relevant
    rank 2  a.txt[80:120)   hits A (new)  -> first relevant rank 2, MRR = 1/2
    rank 3  a.txt[105:200)  hits A again  -> relevant, but no new gain
    rank 4  b.txt[5:40)     hits B (new)
    rank 5  b.txt[40:60)    not relevant

    DCG  = 1/log2(2+1) + 1/log2(4+1) = 0.63093 + 0.43068 = 1.06161
    IDCG = 1/log2(1+1) + 1/log2(2+1) = 1 + 0.63093        = 1.63093
    nDCG = 1.06161 / 1.63093 = 0.65092
    """
    q = _question("q1", ["EVIDENCE-A", "EVIDENCE-B"])
    assert [ev_.spans for ev_ in q.evidence] == [
        (ev.EvidenceSpan("a.txt", 100, 110),), (ev.EvidenceSpan("b.txt", 0, 10),)]
    cites = [_cite("a.txt", 0, 100), _cite("a.txt", 80, 120), _cite("a.txt", 105, 200),
             _cite("b.txt", 5, 40), _cite("b.txt", 40, 60)]
    rank, ndcg = ev.ranking_metrics(q, cites)
    assert rank == 2
    assert ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert ndcg == pytest.approx(0.65092, abs=1e-5)
    # With a cutoff of 3, B (rank 4) is out: DCG = 0.63093, IDCG unchanged -> 0.38685.
    assert ev.ranking_metrics(q, cites, cutoff=3)[1] == pytest.approx(0.38685, abs=1e-5)


def test_overlapping_evidence_items_are_one_unit() -> None:
    """'EVIDENCE-A' and 'DENCE-Ayy' overlap, so they are one unit: IDCG = 1, and the passage
    at rank 1 that holds both scores nDCG 1 (not 1/1.63)."""
    q = _question("q1", ["EVIDENCE-A", "DENCE-Ayy"])
    assert ev.ranking_metrics(q, [_cite("a.txt", 90, 130)]) == (1, 1.0)


def test_evidence_with_doc_id_only_counts_there() -> None:
    docs = {"a.txt": "shared words here", "b.txt": "and shared words there"}
    line = json.dumps({"id": "q", "question": "?", "answers": ["x"],
                       "evidence": [{"doc_id": "b.txt", "text": "shared words"}]})
    q = ev.locate_evidence(ev.parse_questions(line), docs)[0]
    assert q.evidence[0].spans == (ev.EvidenceSpan("b.txt", 4, 16),)
    line = json.dumps({"id": "q", "question": "?", "answers": ["x"], "evidence": ["shared"]})
    q = ev.locate_evidence(ev.parse_questions(line), docs)[0]
    assert {s.doc_id for s in q.evidence[0].spans} == {"a.txt", "b.txt"}  # every occurrence


def test_evidence_is_found_across_other_white_space() -> None:
    """A page wraps a paragraph where the question's author saw one line, and French puts a
    no-break space before ':' — the span covers the document's own characters."""
    docs = {"a.html": "Intro.\n\nLe paquet\n  fournit\u00a0: grub-pc ici."}
    line = json.dumps({"id": "q", "question": "?", "answers": ["grub-pc"],
                       "evidence": [{"doc_id": "a.html", "text": "Le paquet fournit : grub-pc"}]})
    q = ev.locate_evidence(ev.parse_questions(line), docs)[0]
    (span,) = q.evidence[0].spans
    assert docs["a.html"][span.start:span.end] == "Le paquet\n  fournit\u00a0: grub-pc"
    glued = json.dumps({"id": "q", "question": "?", "answers": ["x"],
                        "evidence": [{"doc_id": "a.html", "text": "Lepaquet fournit"}]})
    with pytest.raises(QuestionSetError):  # words glued together are not white space
        ev.locate_evidence(ev.parse_questions(glued), docs)


def _answer(answer: str | None, span: tuple[str, int, int] | None,
            cites: list[dict[str, Any]], confidence: float = 0.9) -> dict[str, Any]:
    return {
        "question": "?", "answer": answer, "abstained": answer is None,
        "answer_span": None if span is None else dict(zip(("doc_id", "start", "end"), span,
                                                          strict=True)),
        "citations": cites, "confidence": confidence,
    }


def test_run_eval_summary_worked_example() -> None:
    """Four questions (three answerable, one unanswerable), canned answers:

    q1 en: relevant at rank 1, answer 'the right one' contains 'right'; span on A
    q2 fr: relevant at rank 2, answer 'wrong' (f1 0), span on A
    q3 fr: no relevant passage, abstains (wrong; false abstention)
    q4 en: unanswerable, abstains (correct abstention)

    Recall@1 = 1/3, Recall@5 = 2/3, MRR@10 = (1 + 1/2 + 0)/3 = 0.5,
    nDCG@10 = (1 + 1/log2(3) + 0)/3 = (1 + 0.63093)/3 = 0.54364,
    accuracy = 1/3, F1 = (2/3 + 0 + 0)/3 = 0.22222 ('the right one' -> [right, one] vs
    [right]: P = 1/2, R = 1, F1 = 2PR/(P+R) = 2/3),
    evidence hit = 2/3, false abstention = 1/3, correct abstention = 1/1.
    """
    qs = [_question("q1", ["EVIDENCE-A"], lang="en"), _question("q2", ["EVIDENCE-A"], lang="fr"),
          _question("q3", ["EVIDENCE-B"], lang="fr"),
          ev.parse_questions(json.dumps({"id": "q4", "question": "?", "lang": "en",
                                         "unanswerable": True}))[0]]
    hit, miss = _cite("a.txt", 95, 140), _cite("b.txt", 20, 28)
    canned = {
        "question q1?": _answer("the right one", ("a.txt", 100, 110), [hit, miss]),
        "question q2?": _answer("wrong", ("a.txt", 90, 105), [miss, hit]),
        "question q3?": _answer(None, None, [hit, miss], 0.1),
        "?": _answer(None, None, [miss], 0.2),
    }
    calls: list[tuple[str, int]] = []

    def answer_fn(question: str, k: int) -> dict[str, Any]:
        calls.append((question, k))
        return canned[question]

    progress: list[tuple[int, int]] = []
    results = ev.run_eval(qs, answer_fn, k=10, progress=lambda d, t: progress.append((d, t)))
    assert [k for _, k in calls] == [10] * 4 and progress[0] == (0, 4) and progress[-1] == (4, 4)
    assert [r.first_relevant_rank for r in results] == [1, 2, None, None]
    assert [r.correct for r in results] == [True, False, False, True]

    report = ev.make_report(results, k=10, config={"label": "t", "mode": "hybrid"})
    s = report["summary"]["overall"]
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (4, 3, 1)
    assert s["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["recall@5"] == s["recall@10"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["mrr@10"] == 0.5
    assert s["ndcg@10"] == pytest.approx(0.54364, abs=1e-4)
    assert s["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["f1"] == pytest.approx(0.22222, abs=1e-4)
    assert s["evidence_hit"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["false_abstention"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["correct_abstention"] == 1.0
    assert s["latency_p50_ms"] is not None
    by_lang = report["summary"]["by_lang"]
    assert by_lang["en"]["mrr@10"] == 1.0 and by_lang["en"]["correct_abstention"] == 1.0
    assert by_lang["fr"]["mrr@10"] == 0.25 and by_lang["fr"]["correct_abstention"] is None
    row = report["questions"][0]
    assert {"id", "lang", "unanswerable", "first_relevant_rank", "answer", "abstained",
            "correct", "f1", "latency_ms"} <= set(row)
    assert "MRR@10" in ev.format_table(report)


def test_metrics_follow_k_below_ten() -> None:
    assert ev.metric_names(3)[:4] == ["recall@1", "recall@3", "mrr@3", "ndcg@3"]
    assert ev.metric_names(10)[:5] == ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"]


def test_malformed_result_is_refused() -> None:
    q = _question("q1", ["EVIDENCE-A"])
    with pytest.raises(QAError, match="citations"):
        ev.run_eval([q], lambda question, k: {"abstained": False, "citations": "x"}, k=5)


# ---------------------------------------------------------------------------- comparison


def test_randomization_identical_runs_p_is_one() -> None:
    scores = [1.0, 0.0, 0.5, 1.0, 0.0] * 6
    assert ev.randomization_test(scores, scores) == 1.0


def test_randomization_clearly_better_run_small_p() -> None:
    """30 questions all improving by 1: only the 2 all-same sign patterns of 2^30 reach the
    observed mean, so p is (0 or so + 1) / 10001."""
    p = ev.randomization_test([0.0] * 30, [1.0] * 30)
    assert p < 0.001
    assert p == ev.randomization_test([0.0] * 30, [1.0] * 30)  # fixed seed: reproducible


def test_randomization_noise_is_not_significant() -> None:
    old = [1.0, 0.0] * 15
    new = [0.0, 1.0] * 15  # as many wins as losses: mean difference 0
    assert ev.randomization_test(old, new) > 0.5


def _report(label: str, correct: list[bool], ranks: list[int | None]) -> dict[str, Any]:
    rows = [
        {"id": f"q{i}", "lang": "fr", "question": f"q{i}?", "unanswerable": False,
         "first_relevant_rank": r, "ndcg": 1 / math.log2(1 + r) if r else 0.0, "answer": "a",
         "answer_span": None, "abstained": False, "confidence": 0.5, "correct": c,
         "f1": float(c), "evidence_hit": c, "latency_ms": 10.0}
        for i, (c, r) in enumerate(zip(correct, ranks, strict=True))
    ]
    return {"format": ev.REPORT_FORMAT, "config": {"label": label, "k": 10, "timestamp": "t"},
            "summary": ev.summarize(rows, k=10), "questions": rows}


def test_compare_lists_better_and_worse_questions() -> None:
    old = _report("old", [False, True, True, False], [3, 1, 2, None])
    new = _report("new", [True, False, True, False], [1, 1, 5, 4])
    c = ev.compare_reports(old, new)
    assert [x["id"] for x in c["better"]] == ["q0", "q3"]  # became right; found at rank 4
    assert [x["id"] for x in c["worse"]] == ["q1", "q2"]  # became wrong; rank 2 -> 5
    acc = next(m for m in c["metrics"] if m["metric"] == "accuracy")
    assert (acc["old"], acc["new"], acc["delta"]) == (0.5, 0.5, 0.0)
    assert acc["p_value"] == 1.0
    same = ev.compare_reports(old, old)
    assert all(m["p_value"] in (1.0, None) for m in same["metrics"])
    assert not same["better"] and not same["worse"]
    assert "better (2): q0 (wrong -> right, rank 3 -> 1)" in ev.format_comparison(c)


def test_comparison_markdown_of_several_runs(tmp_path: Path) -> None:
    runs = [_report("default", [True, False, True, True], [1, 2, 1, 1]),
            _report("dense", [True, False, False, True], [1, 3, None, 1]),
            _report("lexical", [False, False, True, True], [2, 2, 1, 1])]
    path = tmp_path / "REPORT.md"
    ev.write_comparison_markdown(runs, path)
    text = path.read_text(encoding="utf-8")
    assert "| metric | default | dense | lexical |" in text
    assert "| accuracy | **0.750** | 0.500 | 0.500 |" in text
    assert "## Against default" in text and "(p=" in text


# ---------------------------------------------------------------------------- validation


GOOD = {"id": "q1", "question": "Où ?", "lang": "fr", "answers": ["Tokyo"],
        "evidence": ["EVIDENCE-A"]}


def _lines(*objs: Any) -> str:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_lines(GOOD, '{"id": "q2", "question": '), r"line 2: not valid JSON"),
        (_lines(GOOD, {"id": "q2", "answers": ["x"], "evidence": ["EVIDENCE-B"]}),
         r"line 2 \(q2\): missing or empty 'question'"),
        (_lines({**GOOD, "answers": "Tokyo"}), r"line 1 \(q1\): 'answers' must be a list"),
        (_lines({**GOOD, "unanswerable": "no"}), r"line 1 \(q1\): 'unanswerable' must be"),
        (_lines({**GOOD, "evidence": [{"text": "EVIDENCE-A"}]}), r"line 1 \(q1\): evidence item 1"),
        (_lines({**GOOD, "evidence": []}), r"line 1 \(q1\): an answerable question needs 'evid"),
        (_lines({**GOOD, "answers": []}), r"line 1 \(q1\): an answerable question needs 'answers'"),
        (_lines({**GOOD, "unanswerable": True}), r"line 1 \(q1\): an unanswerable question cannot"),
        (_lines(GOOD, "", GOOD), r"line 3 \(q1\): duplicate id, first used on line 1"),
        (_lines([1, 2]), r"line 1: not a JSON object"),
        # qa ask refuses these: the run stopped midway on "the question is empty", no line
        (_lines({**GOOD, "question": "\u200b\ufeff"}),
         r"line 1 \(q1\): 'question' would be refused: the question is empty"),
        (_lines({**GOOD, "question": "\ud800 ?"}), r"line 1 \(q1\): 'question' would be "
                                                     "refused: the question is not valid Unicode"),
        ("\n\n", r"no questions"),
    ],
)
def test_question_file_problems_name_the_line(text: str, message: str) -> None:
    with pytest.raises(QuestionSetError, match=message):
        ev.parse_questions(text, source="set.jsonl")


def test_hostile_lines_are_one_line_errors_with_their_line_number() -> None:
    """Nesting deeper than Python's parser recurses was a bare RecursionError with no line; an
    integer literal over Python's 4,300-digit limit is a ValueError that is not JSONDecodeError."""
    deep = "[" * 100_000 + "]" * 100_000
    huge = '{"id": "q9", "question": "?", "n": ' + "9" * 5000 + "}"
    with pytest.raises(QuestionSetError) as caught:
        ev.parse_questions(_lines(GOOD, deep, huge), source="set.jsonl")
    message = str(caught.value)
    assert message.startswith("set.jsonl: 2 problems: line 2: not valid JSON (nested")
    assert "line 3: not valid JSON (" in message and "\n" not in message
    assert len(message) < 400


@pytest.mark.parametrize(
    "evidence",
    [[" "], ["\n\t"], ["\u200b\ufeff"], ["EVIDENCE-A", "\u00a0"],
     [{"doc_id": "a.txt", "text": "  "}], ["« — »"]],
)
def test_blank_evidence_is_refused(evidence: list[Any]) -> None:
    """Whitespace (or any evidence without a letter or digit) occurs in every document: the
    question got Recall@1 = 1.000 whatever qa retrieved."""
    text = _lines(GOOD, {**GOOD, "id": "q7", "evidence": evidence})
    with pytest.raises(QuestionSetError, match=r"^set.jsonl: line 2 \(q7\): evidence item \d "
                                               r"has no letter or digit"):
        ev.parse_questions(text, source="set.jsonl")


def test_question_file_must_be_a_regular_file_of_bounded_size(tmp_path: Path) -> None:
    """`qa eval /dev/zero` read until MemoryError; a FIFO blocked forever."""
    with pytest.raises(QuestionSetError, match=r"^/dev/zero is not a regular file"):
        ev.read_questions(Path("/dev/zero"))
    fifo = tmp_path / "q.fifo"
    os.mkfifo(fifo)
    with pytest.raises(QuestionSetError, match=r"q.fifo is not a regular file"):
        ev.read_questions(fifo)  # returns at once: no writer is needed to refuse it
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(ev.MAX_QUESTION_FILE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(QuestionSetError, match=r"big.jsonl is larger than 50 MB"):
        ev.read_questions(big)
    ok = tmp_path / "ok.jsonl"
    ok.write_text(_lines(GOOD), encoding="utf-8")
    assert [q.id for q in ev.read_questions(ok)] == ["q1"]


def test_every_problem_is_reported_at_once() -> None:
    text = _lines("{oops", GOOD, {"id": "q2"})
    with pytest.raises(QuestionSetError, match=r"2 problems: line 1: .*; line 3 \(q2\)"):
        ev.parse_questions(text)


def test_evidence_not_in_corpus_names_line_and_id() -> None:
    qs = ev.parse_questions(_lines(GOOD, {**GOOD, "id": "q2", "evidence": ["NOT THERE"]}))
    with pytest.raises(QuestionSetError, match=r"line 2 \(q2\): evidence 'NOT THERE' is not in"):
        ev.locate_evidence(qs, DOCS)
    qs = ev.parse_questions(_lines({**GOOD, "evidence": [{"doc_id": "b.txt",
                                                           "text": "EVIDENCE-A"}]}))
    with pytest.raises(QuestionSetError, match=r"line 1 \(q1\).*not in document 'b.txt'"):
        ev.locate_evidence(qs, DOCS)
    qs = ev.parse_questions(_lines({**GOOD, "evidence": [{"doc_id": "c.txt", "text": "x"}]}))
    with pytest.raises(QuestionSetError, match=r"doc_id 'c.txt', which is not in the corpus"):
        ev.locate_evidence(qs, DOCS)


def test_evidence_with_other_spaces_gets_a_hint() -> None:
    docs = {"d.txt": "le ministre a déclaré «\u00a0jusqu’à la victoire\u00a0»."}
    qs = ev.parse_questions(_lines({**GOOD, "evidence": ["« jusqu'à la victoire »"]}))
    with pytest.raises(QuestionSetError, match=r"occurs in 'd.txt' with other spaces"):
        ev.locate_evidence(qs, docs)


def test_shipped_question_set_is_valid() -> None:
    from qa.documents import read_corpus

    docs = {d.doc_id: d.text for d in read_corpus(ROOT / "corpus").documents}
    qs = ev.locate_evidence(ev.read_questions(ROOT / "eval" / "questions.jsonl"), docs)
    assert len(qs) == 102 and len({q.id for q in qs}) == 102
    near = [q for q in qs if q.near_miss]
    assert len(near) == 14 and all(q.unanswerable for q in near)
    assert sum(q.resolved_date is not None for q in qs) == 15


# ---------------------------------------------------------------------------- service client


def test_service_client_speaks_the_api() -> None:
    seen: list[httpx.Request] = []
    texts = {"a.txt": DOCS["a.txt"], "sub/b.txt": DOCS["b.txt"]}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/documents":
            return httpx.Response(200, json=[{"doc_id": d, "title": ""} for d in texts])
        if request.url.path.startswith("/documents/"):
            doc_id = request.url.path.removeprefix("/documents/")
            return httpx.Response(200, json={"doc_id": doc_id, "text": texts[doc_id]})
        body = json.loads(request.content)
        assert request.method == "POST" and request.url.path == "/ask"
        return httpx.Response(200, json=_answer("right", ("a.txt", 100, 110),
                                                [_cite("a.txt", 100, 110)] * body["k"]))

    client = ev.ServiceClient("http://qa.test/", api_key="s3cret",
                              transport=httpx.MockTransport(handler))
    with client:
        docs = client.documents()
        assert docs == texts
        qs = ev.locate_evidence(ev.parse_questions(_lines(GOOD)), docs)
        results = ev.run_eval(qs, client.answer, k=3)
    assert results[0].first_relevant_rank == 1 and results[0].correct is False  # 'Tokyo'
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in seen)
    assert json.loads(seen[-1].content) == {"question": "Où ?", "k": 3}


def test_service_client_explains_a_refusal() -> None:
    client = ev.ServiceClient("http://qa.test", transport=httpx.MockTransport(
        lambda request: httpx.Response(401, json={"detail": "missing API key"})))
    with pytest.raises(QAError, match="QA_API_KEY"):
        client.documents()


# ---------------------------------------------------------------------------- the command


CORPUS = {
    "alpha.txt": ("Les ministres se sont réunis à Tokyo le 18 octobre pour un sommet.\n\n"
                  "La Corée du Nord a envoyé 7\u00a0000 conteneurs d’armes à la Russie.\n"),
    "beta.txt": ("Le missile a parcouru une distance de 7 000 kilomètres.\n\n"
                 "Il s’agit d’un missile à combustible solide, selon l’agence KCNA.\n"),
}
QUESTIONS: list[dict[str, Any]] = [
    {"id": "q1", "question": "Où les ministres se sont-ils réunis ?", "lang": "fr",
     "answers": ["Tokyo"], "evidence": ["réunis à Tokyo"]},
    {"id": "q2", "question": "How many containers of weapons were sent to Russia?",
     "lang": "en", "answers": ["7000 conteneurs", "7,000 containers"],
     "evidence": [{"doc_id": "alpha.txt", "text": "7\u00a0000 conteneurs"}]},
    {"id": "q3", "question": "Quel type de carburant utilise le missile ?", "lang": "fr",
     "answers": ["combustible solide"], "evidence": ["missile à combustible solide"]},
    {"id": "q4", "question": "Who won the 2022 FIFA World Cup?", "lang": "en",
     "unanswerable": True},
]


def _project(tmp_path: Path, questions: list[dict[str, Any]]) -> tuple[Path, list[str]]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text(_lines(*questions), encoding="utf-8")
    opts = ["--corpus", str(corpus), "--index", str(tmp_path / "index"), "--embedder", "hash"]
    return qfile, opts


def test_cli_eval_writes_reports(tmp_path: Path) -> None:
    qfile, opts = _project(tmp_path, QUESTIONS)
    out, md = tmp_path / "run.json", tmp_path / "run.md"
    result = CliRunner().invoke(cli, ["eval", str(qfile), "--k", "5", "--out", str(out),
                                      "--markdown", str(md), "--label", "tiny", *opts])
    assert result.exit_code == 0, result.output
    assert "Recall@1" in result.stdout and "MRR@5" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["format"] == ev.REPORT_FORMAT
    config = report["config"]
    assert (config["label"], config["mode"], config["embedder"], config["k"]) == (
        "tiny", "hybrid", "hash-256", 5)
    assert config["questions_file"] == str(qfile) and config["timestamp"]
    overall = report["summary"]["overall"]
    assert (overall["questions"], overall["answerable"], overall["unanswerable"]) == (4, 3, 1)
    assert set(report["summary"]["by_lang"]) == {"en", "fr"}
    for name in ev.metric_names(5):
        assert name in overall
    assert 0.0 <= overall["recall@5"] <= 1.0 and overall["latency_p95_ms"] >= 0
    assert [q["id"] for q in report["questions"]] == ["q1", "q2", "q3", "q4"]
    for q in report["questions"]:
        assert isinstance(q["correct"], bool) and q["latency_ms"] >= 0
    assert report["questions"][3]["first_relevant_rank"] is None  # unanswerable
    assert md.read_text(encoding="utf-8").startswith("# qa eval: tiny")

    # The same run compared with itself: nothing changed, every p is 1.
    again = CliRunner().invoke(cli, ["eval", str(qfile), "--k", "5", "--compare", str(out),
                                     *opts])
    assert again.exit_code == 0, again.output
    assert "compared with tiny" in again.stdout and "better (0): none" in again.stdout

    both = tmp_path / "REPORT.md"
    listed = CliRunner().invoke(cli, ["eval-report", str(out), str(out), "--markdown", str(both)])
    assert listed.exit_code == 0, listed.output
    assert "| metric | tiny | tiny #2 |" in both.read_text(encoding="utf-8")


def test_cli_eval_bad_question_file_writes_nothing(tmp_path: Path) -> None:
    qfile, opts = _project(tmp_path, QUESTIONS)
    out = tmp_path / "run.json"
    qfile.write_text(_lines(QUESTIONS[0], "{not json"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(qfile), "--out", str(out), *opts])
    assert result.exit_code == 1 and "line 2: not valid JSON" in result.stderr
    assert not out.exists() and not (tmp_path / "index").exists()  # failed before loading

    bad = [*QUESTIONS[:2], {**QUESTIONS[2], "evidence": ["not in any document"]}]
    qfile.write_text(_lines(*bad), encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(qfile), "--out", str(out), *opts])
    assert result.exit_code == 1
    assert "line 3 (q3): evidence 'not in any document' is not in any document" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["deep", "blank", "device"])
def test_cli_eval_hostile_question_files_fail_in_one_line(tmp_path: Path, kind: str) -> None:
    qfile, opts = _project(tmp_path, QUESTIONS)
    if kind == "deep":
        qfile.write_text(_lines(QUESTIONS[0], "[" * 100_000 + "]" * 100_000), encoding="utf-8")
        expected = f"error: {qfile}: line 2: not valid JSON (nested"
    elif kind == "blank":
        qfile.write_text(_lines({**QUESTIONS[0], "evidence": [" "]}), encoding="utf-8")
        expected = f"error: {qfile}: line 1 (q1): evidence item 1 has no letter or digit"
    else:
        qfile, expected = Path("/dev/zero"), "error: /dev/zero is not a regular file"
    result = CliRunner().invoke(cli, ["eval", str(qfile), *opts])
    assert result.exit_code == 1
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert "unexpected" not in result.stderr and not (tmp_path / "index").exists()


def test_cli_eval_url_refuses_library_options(tmp_path: Path) -> None:
    qfile, _ = _project(tmp_path, QUESTIONS)
    result = CliRunner().invoke(cli, ["eval", str(qfile), "--url", "http://127.0.0.1:9",
                                      "--mode", "dense"])
    assert result.exit_code == 1 and "apply to library runs only" in result.stderr


@pytest.mark.slow
def test_real_model_on_shipped_questions(real_index: Any) -> None:
    """The default model on a slice of the shipped set: the pipeline finds the evidence."""
    qs = ev.read_questions(ROOT / "eval" / "questions.jsonl")
    qs = ev.locate_evidence([*qs[:6], *[q for q in qs if q.unanswerable][:2]],
                            ev.index_documents(real_index))
    results = ev.run_eval(qs, ev.library_answer_fn(real_index), k=10)
    summary = ev.summarize([r.__dict__ for r in results], k=10)["overall"]
    assert summary["answerable"] == 6 and summary["unanswerable"] == 2
    assert summary["recall@10"] >= 0.8


def test_unicode_line_separators_inside_strings_are_not_line_breaks() -> None:
    """json.dumps(ensure_ascii=False) writes U+2028 raw; str.splitlines() would split there."""
    row = {"id": "u1", "question": "Qui ?\u2028Et quand ?", "answers": ["Kim"],
           "evidence": ["Kim"], "unanswerable": False}
    text = "\ufeff" + json.dumps(row, ensure_ascii=False) + "\n"
    (q,) = ev.parse_questions(text)
    assert q.question == "Qui ?\u2028Et quand ?"


def test_compare_refuses_another_k_and_damaged_reports(tmp_path: Path) -> None:
    report = {"format": ev.REPORT_FORMAT, "config": {"k": 10, "questions_file": "a.jsonl"},
              "summary": {"overall": {}}, "questions": [{"id": "q1"}]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(report))
    with pytest.raises(QAError, match="lacks"):
        ev.load_report(path)
    report["questions"] = []
    path.write_text(json.dumps(report))
    old = ev.load_report(path)
    with pytest.raises(QAError, match="k=10"):
        ev.check_comparable(old, k=1, questions_file="a.jsonl")
    assert ev.check_comparable(old, k=10, questions_file="a.jsonl") == []
    assert ev.check_comparable(old, k=10, questions_file="b.jsonl")


def test_command_line_options_keep_their_dashes() -> None:
    """'-a' would otherwise lose its dash and then vanish as the article 'a'."""
    assert ev.normalize_answer("-a") == "-a"
    assert ev.normalize_answer("use --recursive, or -R") == "use --recursive or -r"
    assert ev.answer_contains("List all entries with -a.", ["-a"])
    assert not ev.answer_contains("List all entries.", ["-a"])
    assert ev.normalize_answer("nord-coréen") == "nord coreen"  # inner hyphens unchanged


def test_short_answer_date_and_near_miss_metrics_worked_example() -> None:
    """Three answerable questions, one near-miss and one off-topic question:

    y1 'En quelle année ?' (answers ['2023'], resolved_date 2023): short 'août', value
       '2023' -> holds (through its value), exact, date right;
    y2 answers ['3 000 soldats']: short '3 000 soldats nord-coréens' -> holds, not exact;
       token F1: [3000 soldats nord coreens] vs [3000 soldats], P = 1/2, R = 1 -> 2/3 (its
       value '3000': P = 1, R = 1/2, also 2/3); no resolved_date;
    y3 answers ['18 mars'], resolved_date 2024-03-18: short '18 mars' with value 2023-03-18
       -> holds and exact, but the date is wrong;
    n1 near-miss, answered (wrong); o1 off-topic, abstained (right).
    short hit 3/3, exact 2/3, F1 (1 + 2/3 + 1)/3, date accuracy 1/2, near-miss 0/1,
    off-topic 1/1; passed 4/5 (three answers contain theirs), utility (1+1+1-1+1)/5 = 0.6.
    """
    lines = [
        {"id": "y1", "question": "y1?", "answers": ["2023"], "resolved_date": "2023",
         "evidence": ["EVIDENCE-A"]},
        {"id": "y2", "question": "y2?", "answers": ["3 000 soldats"],
         "evidence": ["EVIDENCE-A"]},
        {"id": "y3", "question": "y3?", "answers": ["18 mars"], "resolved_date": "2024-03-18",
         "evidence": ["EVIDENCE-A"]},
        {"id": "n1", "question": "n1?", "unanswerable": True, "near_miss": True},
        {"id": "o1", "question": "o1?", "unanswerable": True},
    ]
    qs = ev.locate_evidence(ev.parse_questions("\n".join(json.dumps(x) for x in lines)), DOCS)
    hit = _cite("a.txt", 95, 140)

    def result(answer: str | None, short: tuple[str, Any] | None) -> dict[str, Any]:
        r = _answer(answer, ("a.txt", 100, 110) if answer else None, [hit])
        r["short_answer"] = None if short is None else {
            "text": short[0], "doc_id": "a.txt", "start": 100, "end": 104, "kind": "date",
            "value": short[1]}
        return r

    canned = {
        "y1?": result("en août 2023", ("août", "2023")),
        "y2?": result("3 000 soldats nord-coréens", ("3 000 soldats nord-coréens", 3000)),
        "y3?": result("le 18 mars", ("18 mars", "2023-03-18")),
        "n1?": result("something", None),
        "o1?": result(None, None),
    }
    results = ev.run_eval(qs, lambda q, k: canned[q], k=10)
    s = ev.make_report(results, k=10, config={})["summary"]["overall"]
    assert s["short_hit"] == 1.0
    assert s["short_exact"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["short_f1"] == pytest.approx((1 + 2 / 3 + 1) / 3, abs=1e-4)
    assert s["date_accuracy"] == 0.5
    assert s["abstention_near_miss"] == 0.0 and s["abstention_off_topic"] == 1.0
    assert s["overall_accuracy"] == pytest.approx(0.8) and s["utility"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [({"near_miss": True}, "unanswerable questions only"),
     ({"resolved_date": "2024-02-30"}, "resolved_date"),
     ({"resolved_date": 2024}, "resolved_date")],
)
def test_new_question_fields_are_checked(extra: dict[str, Any], problem: str) -> None:
    line = json.dumps({"id": "z", "question": "z?", "answers": ["a b"],
                       "evidence": ["EVIDENCE-A"], **extra})
    with pytest.raises(QuestionSetError, match=problem):
        ev.parse_questions(line)
