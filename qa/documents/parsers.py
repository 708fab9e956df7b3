"""The parser interface and the registry of parsers by file extension.

A parser turns a file's bytes into the text qa indexes, plus a page map and metadata. It
declares an id and a version: both are stored per document in the index manifest, so a
parser upgrade (a new version) is visible there and its documents are re-split and
re-embedded when their text changes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from qa.documents.model import Block

# What any parser may read: larger files are skipped with a warning, before parsing, so one
# huge or hostile file cannot exhaust memory or stall a build (a 200 MB text file would take
# hours to embed). Raise them here if your corpus needs it.
MAX_FILE_BYTES = 64 * 1024 * 1024
# Extracted text per document (about 2,500 PDF pages): beyond it the file is skipped.
MAX_TEXT_CHARS = 5_000_000


class SkipFile(Exception):
    """Raised by a parser: the file cannot be indexed, for the reason given (one line)."""


class LibraryMissing(SkipFile):
    """A library the parser needs cannot be imported: no file of its format can be read."""


class ReadFailed(SkipFile):
    """The file could not be read this time (an I/O error, a timeout): its content is not
    the cause, so the skip is not remembered and the next build tries it again."""


@dataclass(frozen=True)
class Parsed:
    """A parser's result. `text` is what offsets index; `body_start` is where the content
    starts (after front matter); `pages` the [start, end) range of each page in `text`;
    `blocks` its structure (exact offsets, text order, no overlaps)."""

    text: str
    body_start: int = 0
    pages: tuple[tuple[int, int], ...] = ()
    title: str = ""
    date: str | None = None  # 'YYYY-MM' or 'YYYY-MM-DD', already validated
    date_source: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # read, with a caveat (e.g. "malformed date ...")
    blocks: tuple[Block, ...] = ()


class Parser(Protocol):
    """Turns the bytes of one file into a Parsed (or raises SkipFile with the reason)."""

    id: str  # e.g. "pdf"
    version: int  # bump when the same file would give another text or page map
    format: str  # the name shown in the ingestion report: "text", "pdf", "html", "docx"
    libraries: tuple[str, ...]  # the modules parse() imports (through import_library)

    def parse(self, data: bytes, *, name: str) -> Parsed: ...


# extension -> (module, class): modules are imported only when a file needs them.
_REGISTRY: dict[str, tuple[str, str]] = {
    ".txt": ("qa.documents.plain", "PlainParser"),
    ".md": ("qa.documents.plain", "PlainParser"),
    ".pdf": ("qa.documents.pdf", "PdfParser"),
    ".html": ("qa.documents.html", "HtmlParser"),
    ".htm": ("qa.documents.html", "HtmlParser"),
    ".docx": ("qa.documents.docx", "DocxParser"),
}
EXTENSIONS = tuple(_REGISTRY)
_INSTANCES: dict[tuple[str, str], Parser] = {}


def parser_for(extension: str) -> Parser | None:
    """The parser for a file extension ('.pdf'), or None when qa does not read it."""
    target = _REGISTRY.get(extension.lower())
    if target is None:
        return None
    parser = _INSTANCES.get(target)
    if parser is None:
        module = importlib.import_module(target[0])
        parser = getattr(module, target[1])()
        _INSTANCES[target] = parser
    return parser


def format_of(extension: str) -> str:
    """Report name of the format an extension belongs to ('.htm' -> 'html')."""
    target = _REGISTRY.get(extension.lower())
    if target is None:
        return "other"
    return {"plain": "text"}.get(target[0].rsplit(".", 1)[1], target[0].rsplit(".", 1)[1])


# Bytes that text (UTF-8, Latin-1, HTML) does not hold: C0 controls except tab, line ends,
# form feed, backspace and escape (man pages overstrike with backspace, logs colour with
# escape), and DEL. Random bytes hold about 10% of them; text none.
_CONTROL = bytes([*range(0, 8), *range(14, 27), *range(28, 32), 127])
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)
BINARY_BLOCK = 65_536
BINARY_SHARE = 0.01


def looks_binary(data: bytes) -> bool:
    """Whether any 64 KB block of data holds more than 1% control bytes (wherever binary
    content starts, not only a NUL near the beginning)."""
    for at in range(0, len(data), BINARY_BLOCK):
        block = data[at : at + BINARY_BLOCK]
        if len(block.translate(None, _NOT_CONTROL)) > max(8, BINARY_SHARE * len(block)):
            return True
    return False


def parsers() -> list[Parser]:
    """One instance of every registered parser (imports their modules, not their libraries)."""
    return list({id(p): p for p in (parser_for(ext) for ext in EXTENSIONS) if p}.values())


# Import names whose distribution on PyPI has another name; used only when the import fails.
_DISTRIBUTIONS = {"docx": "python-docx", "yaml": "pyyaml", "lxml": "lxml"}


def _install_name(module: str) -> str:
    top = module.split(".")[0]
    installed = importlib.metadata.packages_distributions().get(top)
    return installed[0] if installed else _DISTRIBUTIONS.get(top, top)


def import_library(module: str) -> ModuleType:
    """Import a parser's library, or raise LibraryMissing naming the real cause and the fix.

    The cause is the innermost missing module: trafilatura's import fails when jusText
    cannot import lxml_html_clean, and that is what must be installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        cause: BaseException | None = exc
        missing: ModuleNotFoundError | None = None
        while cause is not None:
            if isinstance(cause, ModuleNotFoundError) and cause.name:
                missing = cause
            cause = cause.__cause__ or cause.__context__
        name = missing.name if missing is not None and missing.name else module
        detail = str(missing or exc).splitlines()[0] if str(missing or exc) else "ImportError"
        raise LibraryMissing(
            f"cannot import {module} ({detail}): pip install {_install_name(name)}"
        ) from None


def clean_extracted(text: str) -> str:
    """Extracted text (PDF, HTML, DOCX) with ligatures expanded and line ends unified.

    This is the document's text as qa stores and serves it, so offsets stay exact.
    """
    for lig, plain in _LIGATURES.items():
        if lig in text:
            text = text.replace(lig, plain)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\ufb05": "st", "\ufb06": "st"}
