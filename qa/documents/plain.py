""".txt and .md: the decoded file unchanged, with metadata from YAML front matter or a date line."""

from __future__ import annotations

import re

from qa.documents.parsers import Parsed, SkipFile, import_library, looks_binary
from qa.documents.textblocks import markdown_blocks, text_blocks
from qa.temporal import valid_date

# A leading "date 2024-03" (as in the shipped 001_*.txt, where it shares the first line with
# the text) or YAML front matter. Both are metadata, kept out of chunks.
# A byte-order mark (files saved by some Windows editors) may come first.
_DATE_PREFIX = re.compile(
    r"\A\ufeff?\s*date\s*[:=]?\s*(\d{4}-\d{2}(?:-\d{2})?)\b[ \t]*(?:\r\n?|\n)?\s*", re.I
)
_DATE_LIKE_PREFIX = re.compile(r"\A\ufeff?\s*date\s*[:=]?\s*(\d{4}-\d\d?(?:-\d\d?)?)\b", re.I)
_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*(?:\r\n?|\n)(.*?)(?:\r\n?|\n)---[ \t]*(?:\r\n?|\n|\Z)\s*", re.S
)

# Front matter is a few lines of metadata: refuse anything bigger or deeper than that, and
# YAML aliases outright (nested aliases expand exponentially: a 600-byte "alias bomb" grows
# to gigabytes in yaml.safe_load, which expands them).
MAX_FRONT_MATTER_CHARS = 16_384
MAX_FRONT_MATTER_DEPTH = 8
MAX_META_VALUE_CHARS = 1_000


class FrontMatterError(ValueError):
    """Front matter that qa refuses to load (reason in the message)."""


def _safe_yaml(source: str) -> object:
    """yaml.safe_load without aliases, anchors or deep nesting (FrontMatterError if any)."""
    yaml = import_library("yaml")
    if len(source) > MAX_FRONT_MATTER_CHARS:
        raise FrontMatterError(f"front matter longer than {MAX_FRONT_MATTER_CHARS} characters")
    depth = 0
    try:
        # Events only: nothing is built or expanded while we check.
        for event in yaml.parse(source, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise FrontMatterError("front matter uses YAML aliases/anchors, which qa refuses")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_FRONT_MATTER_DEPTH:
                    raise FrontMatterError(
                        f"front matter nested deeper than {MAX_FRONT_MATTER_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(source)
    except yaml.YAMLError:
        return None  # not YAML after all: the text is read as text


def parse_metadata(text: str) -> tuple[int, dict[str, str]]:
    """Return (offset where the body starts, metadata) for a document's text.

    Raises FrontMatterError for front matter qa refuses (aliases, too large, too deep).
    """
    meta: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        loaded = _safe_yaml(match.group(1))
        if isinstance(loaded, dict):
            meta = {str(k)[:100]: str(v)[:MAX_META_VALUE_CHARS]
                    for k, v in loaded.items() if v is not None}
            meta["_source"] = "front matter"
            return match.end(), meta
    match = _DATE_PREFIX.match(text)
    if match:
        meta["date"] = match.group(1)
        meta["_source"] = "text prefix"
        return match.end(), meta
    return 0, meta


def title_of(text: str, body_start: int, meta: dict[str, str]) -> str:
    """The title: from metadata, else the first line long enough to be one."""
    if meta.get("title"):
        return meta["title"][:200]
    for line in text[body_start : body_start + 20_000].splitlines():
        line = line.strip(" \t.•*#")
        if len(line) >= 12:  # skip "Sommaire"-like headings
            return line if len(line) <= 100 else line[:97].rstrip() + "..."
    return ""


def decode_utf8(data: bytes) -> str:
    """The bytes as UTF-8 text, or SkipFile naming why not."""
    if b"\x00" in data or looks_binary(data):
        raise SkipFile("binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not UTF-8 (byte {exc.start})") from None
    if not text.strip("\ufeff \t\r\n"):
        raise SkipFile("empty file")
    return text


class PlainParser:
    """The file's UTF-8 text exactly as stored (offsets index the file itself), with the
    blocks its layout shows (Markdown for .md; headings, term/definition pairs and command
    listings of plain text and man pages otherwise)."""

    id = "plain"
    version = 2
    format = "text"
    libraries = ("yaml",)  # front matter

    def parse(self, data: bytes, *, name: str) -> Parsed:
        return self.parse_text(decode_utf8(data), markdown=name.lower().endswith(".md"))

    def parse_text(self, text: str, *, markdown: bool = False) -> Parsed:
        try:
            body_start, meta = parse_metadata(text)
        except FrontMatterError as exc:
            raise SkipFile(str(exc)) from None
        source = meta.pop("_source", None)
        warnings: tuple[str, ...] = ()
        raw_date = meta.get("date", "")
        date = valid_date(raw_date)
        if raw_date and date is None:
            warnings = (f"malformed date {raw_date[:40]!r} in the {source}; indexed undated",)
        elif not raw_date:
            like = _DATE_LIKE_PREFIX.match(text)
            if like:  # "date 2024-3-5": looks like a date line, is not one qa reads
                warnings = (f"malformed date {like.group(1)!r} in the text prefix; "
                            "indexed undated",)
        find = markdown_blocks if markdown else text_blocks
        return Parsed(
            text=text,
            blocks=find(text, body_start),
            body_start=body_start,
            title=title_of(text, body_start, meta),
            date=date,
            date_source=source if date else None,
            meta=meta,
            warnings=warnings,
        )
