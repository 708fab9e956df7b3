"""Question set -> metrics and reports (`qa eval`).

questions.py reads and checks question files, metrics.py scores answers (see its docstring for
every metric's definition), compare.py compares runs, report.py writes tables and reports,
client.py provides answer functions (the library, or a running service over HTTP).
"""

from qa.evaluation.client import ServiceClient, index_documents, library_answer_fn
from qa.evaluation.compare import (
    PERMUTATIONS,
    SEED,
    check_comparable,
    compare_reports,
    randomization_test,
)
from qa.evaluation.metrics import (
    LABELS,
    LATENCY_METRICS,
    LOWER_IS_BETTER,
    RANK_CUTOFF,
    RECALL_CUTOFFS,
    REPORT_FORMAT,
    AnswerFn,
    Progress,
    QuestionResult,
    check_result,
    make_report,
    metric_label,
    metric_names,
    question_score,
    ranking_metrics,
    run_eval,
    score_result,
    summarize,
)
from qa.evaluation.normalize import ARTICLES, answer_contains, normalize_answer, token_f1
from qa.evaluation.questions import (
    MAX_QUESTION_FILE_BYTES,
    UNKNOWN_LANG,
    Evidence,
    EvidenceSpan,
    Question,
    locate_evidence,
    parse_questions,
    read_questions,
)
from qa.evaluation.report import (
    check_output_path,
    comparison_markdown,
    format_comparison,
    format_table,
    load_report,
    report_markdown,
    write_comparison_markdown,
    write_markdown,
    write_report,
)

__all__ = [
    "ARTICLES", "LABELS", "LATENCY_METRICS", "LOWER_IS_BETTER", "MAX_QUESTION_FILE_BYTES",
    "PERMUTATIONS", "RANK_CUTOFF",
    "RECALL_CUTOFFS", "REPORT_FORMAT", "SEED", "UNKNOWN_LANG", "AnswerFn", "Evidence",
    "EvidenceSpan", "Progress", "Question", "QuestionResult", "ServiceClient", "answer_contains",
    "check_comparable", "check_output_path", "check_result", "compare_reports",
    "comparison_markdown", "format_comparison", "format_table", "index_documents",
    "library_answer_fn", "load_report",
    "locate_evidence", "make_report", "metric_label", "metric_names", "normalize_answer",
    "parse_questions", "question_score", "randomization_test", "ranking_metrics",
    "read_questions", "report_markdown", "run_eval", "score_result", "summarize", "token_f1",
    "write_comparison_markdown", "write_markdown", "write_report",
]
