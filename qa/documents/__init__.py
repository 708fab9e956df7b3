"""Read a corpus folder into Documents: the extracted text (exact), a page map, metadata.

One parser per format (plain.py for .txt/.md, pdf.py, html.py, docx.py), found by file
extension through the registry in parsers.py; heavy libraries are imported only when a file
of their format is read.
"""

from qa.documents.cage import ParseLimits
from qa.documents.corpus import (
    CorpusReader,
    corpus_paths,
    current_parser,
    make_document,
    read_corpus,
    read_file,
)
from qa.documents.model import (
    Block,
    Corpus,
    Document,
    FormatStats,
    SkippedFile,
    page_of,
    section_of,
)
from qa.documents.parsers import (
    EXTENSIONS,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    Parsed,
    Parser,
    SkipFile,
    parser_for,
)
from qa.documents.plain import parse_metadata

__all__ = [
    "EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "Block",
    "Corpus",
    "CorpusReader",
    "Document",
    "FormatStats",
    "ParseLimits",
    "Parsed",
    "Parser",
    "SkipFile",
    "SkippedFile",
    "corpus_paths",
    "current_parser",
    "make_document",
    "page_of",
    "parse_metadata",
    "parser_for",
    "read_corpus",
    "read_file",
    "section_of",
]
