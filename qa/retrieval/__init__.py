"""Question -> ranked passages, one unit a module: query.py prepares the question (vector,
matched corpus stems), filters.py restricts documents, fusion.py fuses rankings (rrf),
ranking.py runs the dense and lexical searches and fuses them, search.py is the library's
retrieval-only entry point (what the MCP `search` tool calls)."""

from qa.retrieval.filters import DocTable, Filters, allowed_docs, make_filters
from qa.retrieval.fusion import RRF_K, rrf
from qa.retrieval.query import (
    SPELLING_MIN_RATIO,
    TRANSLATE_PRESENT,
    TRANSLATION_MIN_SIM,
    TRANSLATIONS_PER_WORD,
    Query,
    prepare,
)
from qa.retrieval.ranking import CANDIDATES, Mode, Passage, retrieve
from qa.retrieval.search import Hit, search

__all__ = [
    "CANDIDATES", "RRF_K", "SPELLING_MIN_RATIO", "TRANSLATE_PRESENT", "TRANSLATIONS_PER_WORD",
    "TRANSLATION_MIN_SIM", "DocTable", "Filters", "Hit", "Mode", "Passage", "Query",
    "allowed_docs", "make_filters", "prepare", "retrieve", "rrf", "search",
]
