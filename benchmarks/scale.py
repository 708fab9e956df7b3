"""Scale benchmark: `qa index`, `qa ask` and `qa serve` on corpora of real text of growing size.

    pip install -e ".[bench]"                     # matplotlib, for the plot
    python benchmarks/scale.py --sizes 20,200     # a check that takes ~2 min on 2 cores
    python benchmarks/scale.py --sizes 1000,10000,50000 --embedder hash-512 --label hash
    python benchmarks/scale.py --sizes 1000,10000,50000 --label use-m3
    # before/after: an older commit in its own virtualenv, both measured in one run
    git worktree add /tmp/qa-old <commit> && python3 -m venv /tmp/venv-old \
        && /tmp/venv-old/bin/pip install -e /tmp/qa-old
    python benchmarks/scale.py --sizes 1000,10000 --embedder hash-512 \
        --qa-bin /tmp/venv-old/bin/qa --label before --qa-bin "$(which qa)" --label after

Sizes are documents. The default embedder (use-m3) indexed ~17k chars/s here at 200 documents
and documents average ~3.5k chars, so a full build of 50,000 documents (~180M chars) takes
hours; `--embedder hash-512` measures storage and search costs at that size in minutes.

Everything goes through the installed command line (`qa index`, `qa ask --json`, `qa serve`
on 127.0.0.1 only), never the library, so any installation can be measured: `--qa-bin PATH`
(repeatable; default: the `qa` next to this interpreter) with one `--label` per `--qa-bin`
(default: "current", or the virtualenv's folder name). The one library call is the optional
ANN recall check (below), made in a subprocess by the `python` next to that `qa`.

Corpora. Real text from this machine: the man pages under /usr/share/man (gzip'd roff,
converted to plain text by the small roff stripper in this file, not by groff/man: rendering
~21k pages with groff would take tens of CPU-minutes and its output depends on the groff
version) and the text files under /usr/share/doc (README, changelog, copyright, NEWS, ...;
.gz decompressed; binary, non-UTF-8, HTML, code, image and config files and examples/ or
test/ folders skipped). Texts longer than `--max-doc-chars` (default 5000) are split into
several documents at paragraph boundaries (a paragraph longer than that at a line break),
which turns ~25k files into ~55k documents here; the output says how many documents are such
parts. Duplicates are removed, because the index reuses the embeddings of unchanged text and
duplicates would flatter it: a paragraph of 200 characters or more (the GPL in hundreds of
copyright files, ...) is kept only where it first occurs, and a document whose text equals an
earlier one is dropped. Each document starts with a `source: <file> (part i of n)` line. This
pool is built once (~1 min) and cached in `--work` (default /tmp/qa-scale): sorted sources,
shuffled with `--seed` (default 0). The corpus of size N is the five seed articles of corpus/
(always included) plus the first N-5 pool documents, one `.txt` file each, so a smaller
corpus is a subset of a larger one. Each run gets its own hard-linked copy of the corpus; the
update step replaces a file, never writing through the link. Sizes outside 5..pool+5 are
refused before anything runs. The pool depends on the packages installed when it is built:
it is cached, and its `fingerprint` (in the JSON) tells whether two results files used the
same corpora; to compare runs over days, keep `--work` on a persistent disk, not in /tmp.

Measured for each installation x embedder x size. Every subprocess and HTTP request has a
timeout (`--timeout` for a build or for serve to get ready, `--ask-timeout` for an ask); a
failing step is recorded in the row's "errors" and the other steps and sizes still run.

- index_s: wall time of a full `qa index` (new process, empty index folder), corpus chars/s,
  CPU seconds, and the peak RSS of that process: the rusage that os.wait4 returns for that
  one child, collected by a small launcher process (python -S, ~10 MB) because a child
  forked from this script would inherit this script's RSS as its high-water mark (and
  getrusage(RUSAGE_CHILDREN) would be the maximum over all children so far);
- index_bytes: apparent size of all files under the index folder after the full build, per
  file name (index_bytes_by_file) and per chunk. The chunk count comes from `qa index --json`
  if that installation has the option, else its `indexed N documents, M chunks` line, else
  the live manifest(s) under the index folder, else GET /healthz. Also index_bytes after the
  updates (previous generations / new segments included);
- update_s: append one sentence to one document and run `qa index` again: median over
  `--repeats` (default 3) updates, each of a different document;
- ask_cold_s: `qa ask "When did Putin visit Pyongyang?" --json` in a new process (index built,
  OS page cache warm): median wall time and peak RSS over `--repeats`; answer=003 says whether
  the answer span is in the seed article 003_c79683804ee38f58.txt (ask_seed_cited in the
  JSON: whether every run cites it among the passages);
- serve_ready_s: from starting `qa serve --port <free port> --corpus C --index I` until
  GET /healthz answers 200; then `--rounds` (default 3) rounds over the first `--questions`
  (default 30) questions of eval/questions.jsonl (English and French interleaved), POST /ask
  {"question": ..., "k": 5} one at a time after one untimed warm-up: p50/p95 of per-request
  latency (warm_errors counts non-200s); the server's peak RSS after it is terminated;
- loadavg_start / loadavg_end: the 1-minute load average around the run (shared machines);
- ann_recall_at_10: `qa.index.ann_recall(index_dir, embedder_spec, questions, k=10)` if that
  installation has it, else null / "n/a" with the reason in ann_recall_note.

Before the sizes, each installation x embedder indexes the seed articles once, untimed, so
that its caches in `--work`/cache/<label> (XDG_CACHE_HOME of its subprocesses) are warm, as
after a user's first run. `--embedder SPEC` (repeatable or comma-separated) is passed as
`--embedder` when `qa index --help` lists that option, and always as QA_EMBEDDER; the
embedder column shows what the index's manifest records. Other QA_* variables are removed from
the subprocesses' environment. Times are medians; warm latencies are percentiles.

Output: JSON (`--out`, default benchmarks/results/scale-<label>[_vs_<label>...].json:
settings, machine, pool statistics, installations with version and git commit, one object
per run with the fields above; rewritten after every size), a Markdown table (printed, and
written to `--markdown` if given) and a log-log plot of seconds against documents for full
index, one-document update, cold ask, warm p50 and serve ready, one line each per
installation x embedder (`--plot`, default benchmarks/scale.png; matplotlib is imported only
there). Indexes are deleted after each run unless `--keep-indexes`; the pool stays in
`--work`, with each run's corpus and the logs of every command under `--work`/runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ROOT,
    free_port,
    percentile,
    qa_command,
    questions,
    start_server,
    stop_server,
    wait_ready,
)

ASK_QUESTION = "When did Putin visit Pyongyang?"
SEED_DOC = "003_c79683804ee38f58.txt"
POOL_VERSION = 2  # bump when the extraction below changes: the cached pool is rebuilt
SEEDS = sorted((ROOT / "corpus").glob("*.txt"))
MAN_ROOT = Path("/usr/share/man")
DOC_ROOT = Path("/usr/share/doc")
MIN_DOC_CHARS = 200
MAX_SOURCE_BYTES = 20_000_000  # decompressed; bigger files are skipped
DEDUP_PARAGRAPH_CHARS = 200  # repeated paragraphs at least this long are kept only once
SKIP_SUFFIXES = {
    "html", "htm", "xhtml", "xml", "svg", "css", "js", "json", "pdf", "ps", "eps", "dvi",
    "png", "jpg", "jpeg", "gif", "ico", "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf",
    "zip", "tar", "tgz", "bz2", "xz", "zst", "lz", "lzma", "deb", "so", "a", "o", "pyc", "py",
    "pl", "pm", "sh", "bash", "c", "h", "cc", "cpp", "hpp", "java", "rb", "lua", "tcl", "el",
    "elc", "mo", "gmo", "db", "sqlite", "bin", "dat", "gpg", "asc", "sig", "pem", "der", "crt",
    "key", "ogg", "wav", "mp3", "mk", "in", "m4", "ac", "am", "conf", "cfg", "ini", "yaml",
    "yml", "toml", "diff", "patch", "info", "sgml", "tex", "texi", "texinfo", "1", "2", "3",
    "4", "5", "6", "7", "8", "pod", "awk", "sed", "vim", "desktop", "service", "csv", "tsv",
}
SKIP_DIRS = {"examples", "example", "images", "html", "test", "tests"}


# --------------------------------------------------------------------------------------------
# roff to plain text


_ROFF_CHARS = {
    "em": "—", "en": "–", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘",
    "cq": "’", "bu": "•", "co": "©", "rg": "®", "tm": "™", "de": "°", "mu": "×", "di": "÷",
    "+-": "±", "<=": "≤", ">=": "≥", "!=": "≠", "->": "→", "<-": "←", "ga": "`", "ti": "~",
    "ha": "^", "rs": "\\", "sl": "/", "ba": "|", "br": "|", "ul": "_", "pl": "+", "mi": "-",
    "eq": "=", "ss": "ß", "ae": "æ", "o/": "ø", "'e": "é", "`e": "è", "'a": "á", ":u": "ü",
    ":o": "ö", ":a": "ä", "fi": "fi", "fl": "fl", "ff": "ff", "Fi": "ffi", "Fl": "ffl",
}
_ROFF_STRINGS = {"R": "®", "Tm": "™", "lq": "“", "rq": "”", "aq": "'", "dq": '"'}
_ESCAPE = re.compile(
    r"""\\(?:
        \((?P<c2>..)                         # \(xx  special character
      | \[(?P<cn>[^\]]*)\]                   # \[name]
      | \*(?:\((?P<s2>..)|\[(?P<sn>[^\]]*)\]|(?P<s1>.))   # \*x \*(xx \*[name] strings
      | [fFn](?:\(..|\[[^\]]*\]|.)           # fonts, families, number registers
      | s[-+]?(?:\d+|\(\d\d|\[[^\]]*\])      # size
      | [hvwoLlDXZbxRSN]'[^']*'              # escapes with a quoted argument
      | [kz].                                # \kx \zc
      | (?P<one>.)                           # everything else: one character
    )""",
    re.VERBOSE | re.DOTALL,
)
_ONE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t", ".": ".",
        "'": "'", "`": "`", "_": "_", "@": "@", '"': ""}
_BREAK_MACROS = {"PP", "LP", "P", "sp", "br", "TP", "TQ", "IP", "HP", "Pp", "Lp", "Bl", "El",
                 "It", "Bd", "Ed", "RS", "RE", "nf", "fi", "EX", "EE", "SY", "YS", "UR", "UE",
                 "ti", "bp", "ne"}
_HEADING_MACROS = {"SH", "SS", "Sh", "Ss"}
_SILENT_MACROS = {"TH", "Dd", "Dt", "Os", "ds", "nr", "so", "ft", "in", "ll", "ad", "na", "hy",
                  "nh", "ta", "ps", "vs", "ie", "el", "if", "tr", "cc", "mso", "lf", "pc", "ns",
                  "rs", "ev", "rm", "rn", "als", "ss", "PD", "DT", "UC", "AT", "hw", "ce",
                  "fam", "ec", "eo", "ul", "cu", "mk", "rt", "wh", "ch", "it", "em", "pso",
                  "blm", "lsm", "char", "fchar", "fcolor", "gcolor", "defcolor", "color",
                  "do", "lt", "pl", "po", "pn", "tm", "ab", "ex", "nx", "rd", "sy",
                  "pi", "cf", "trf", "hc", "lg", "kern", "shc", "cflags", "warn", "An", "Ox",
                  "Bx", "Nx", "Fx", "Ux", "At", "Bsx", "Dx", "Lb", "In", "Db", "Sm", "Bk",
                  "Ek", "Mt", "MT", "ME", "OP"}
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
_MDOC_CALLABLE = {
    "Ad", "Ao", "Ac", "Aq", "Ar", "Bo", "Bc", "Bq", "Brq", "Bro", "Brc", "Cd", "Cm", "Do", "Dc",
    "Dq", "Dv", "Em", "Eo", "Ec", "Er", "Ev", "Fa", "Fc", "Fl", "Fn", "Fo", "Ft", "Ic", "Li",
    "Lk", "Ms", "Mt", "Nm", "No", "Ns", "Oo", "Oc", "Op", "Pa", "Pc", "Pf", "Po", "Pq", "Ql",
    "Qo", "Qc", "Qq", "Sc", "So", "Sq", "Sx", "Sy", "Tn", "Va", "Vt", "Xr", "Xo", "Xc", "Ux",
    "Nd", "Ta", "Dl", "D1", "Ot", "St", "Sh", "Cx",
}
_MACRO = re.compile(r"^[.'][ \t]*([^\s\\]+)[ \t]*(.*)$")
_ARG = re.compile(r'"((?:[^"]|"")*)"?|(\S+)')


def _escape(m: re.Match[str]) -> str:
    if m.group("c2") is not None:
        return _ROFF_CHARS.get(m.group("c2"), "")
    if m.group("cn") is not None:
        name = m.group("cn")
        if name.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
            return chr(int(name[1:], 16))
        return _ROFF_CHARS.get(name, "")
    for g in ("s2", "sn", "s1"):
        if m.group(g) is not None:
            return _ROFF_STRINGS.get(m.group(g), "")
    one = m.group("one")
    if one is not None:
        return _ONE.get(one, "")
    return ""


def _inline(text: str) -> str:
    text = re.sub(r'\\".*', "", text)  # comment to the end of the line
    return _ESCAPE.sub(_escape, text)


def _args(rest: str) -> list[str]:
    return [(m.group(1) if m.group(1) is not None else m.group(2)).replace('""', '"')
            for m in _ARG.finditer(rest)]


def _mdoc_words(tokens: list[str], page_name: str) -> list[str]:
    """Words of an mdoc line: callable macro names dropped, Fl arguments get a dash, a bare
    Nm is the page's name, Nd starts with a dash."""
    words: list[str] = []
    dash = False
    for i, token in enumerate(tokens):
        if token in _MDOC_CALLABLE:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if token == "Nm" and page_name and (nxt is None or nxt in _MDOC_CALLABLE):
                words.append(page_name)
            if token == "Nd":
                words.append("-")
            if dash and token != "Fl":
                words.append("-")
            dash = token == "Fl"
            continue
        words.append(("-" if dash else "") + _inline(token))
        dash = False
    if dash:
        words.append("-")
    return [w for w in words if w]


def roff_to_text(source: str) -> str:
    """Plain text of a man page (man or mdoc macros): paragraphs separated by blank lines."""
    paragraphs: list[str] = []
    current: list[str] = []
    fill = True
    skip_until: str | None = None
    table_format = False
    page_name = ""

    def flush() -> None:
        if current:
            joined = (" " if fill else "\n").join(current).strip()
            if joined:
                paragraphs.append(re.sub(r"[ \t]+", " ", joined) if fill else joined)
            current.clear()

    for raw in source.splitlines():
        line = raw.rstrip()
        if skip_until is not None:
            if line.startswith(skip_until):
                skip_until = None
            continue
        if table_format:  # tbl format lines end with a period
            if line.endswith("."):
                table_format = False
            continue
        m = _MACRO.match(line)
        if not m and line[:1] in (".", "'"):
            continue  # an empty request or a comment
        if m:
            name, rest = m.group(1), m.group(2)
            if name.startswith('\\"'):
                continue
            if name in ("de", "de1", "am", "ig"):
                skip_until = ".."
            elif name == "TS":
                flush()
                fill, table_format = False, True
            elif name == "TE":
                flush()
                fill = True
            elif name in _HEADING_MACROS:
                flush()
                if rest:
                    paragraphs.append(" ".join(_inline(a) for a in _args(rest)).strip())
            elif name in _BREAK_MACROS:
                flush()
                if name == "nf" or name == "EX":
                    fill = False
                elif name in ("fi", "EE"):
                    fill = True
                elif name in ("IP", "It") and rest:
                    tag = " ".join(_mdoc_words(_args(rest), page_name) if name == "It"
                                   else [_inline(a) for a in _args(rest)]).strip()
                    if tag:
                        current.append(tag)
            elif name == "Nm" and not rest and page_name:
                current.append(page_name)
            elif name in _SILENT_MACROS or not rest:
                continue
            elif name in _ALTERNATING:
                current.append("".join(_inline(a) for a in _args(rest)))
            elif name in _MDOC_CALLABLE:  # mdoc: nested macro names dropped, -flags, Nm
                words = _mdoc_words([name, *_args(rest)], page_name)
                if name == "Nm" and not page_name and words:
                    page_name = words[0]
                current.append(" ".join(words))
            else:  # font macros (B, I, SM, ...) and the rest: keep the words
                current.append(" ".join(w for w in (_inline(a) for a in _args(rest)) if w))
            continue
        text = _inline(line)
        if not text.strip():
            flush()
        elif "\t" in text and not fill:
            current.append(re.sub(r"\t+", "  ", text))
        else:
            current.append(text)
    flush()
    return "\n\n".join(p for p in paragraphs if p.strip())


# --------------------------------------------------------------------------------------------
# the document pool


def _man_sources() -> Iterator[Path]:
    if MAN_ROOT.is_dir():
        yield from (p for p in MAN_ROOT.rglob("*") if p.is_file() and not p.is_symlink())


def _doc_sources() -> Iterator[Path]:
    if not DOC_ROOT.is_dir():
        return
    for p in DOC_ROOT.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        rel = p.relative_to(DOC_ROOT).parts
        if any(part.lower() in SKIP_DIRS for part in rel[:-1]):
            continue
        name = p.name[:-3] if p.name.endswith(".gz") else p.name
        suffix = name.rsplit(".", 1)[1].lower() if "." in name else ""
        if suffix in SKIP_SUFFIXES:
            continue
        yield p


def _read_text(path: Path) -> str | None:
    """Decompressed UTF-8 text of a file, or None (binary, not UTF-8, too big, unreadable)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read(MAX_SOURCE_BYTES + 1)
        else:
            if path.stat().st_size > MAX_SOURCE_BYTES:
                return None
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if len(data) > MAX_SOURCE_BYTES or b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    # ANSI colour sequences, backspace overstrike and other control characters are dropped.
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    text = re.sub(r".\x08", "", text)
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n+", text) if p.strip()]


def _split(paragraphs: list[str], max_chars: int) -> list[list[str]]:
    """Consecutive paragraphs grouped into parts of at most max_chars (a longer paragraph is
    cut at line breaks, then hard, so that no part exceeds the limit)."""
    pieces: list[str] = []
    for p in paragraphs:
        while len(p) > max_chars:
            cut = p.rfind("\n", 0, max_chars)
            cut = cut if cut > max_chars // 2 else p.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            pieces.append(p[:cut].rstrip())
            p = p[cut:].lstrip()
        if p:
            pieces.append(p)
    parts: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        if parts[-1] and size + 2 + len(piece) > max_chars:
            parts.append([])
            size = 0
        parts[-1].append(piece)
        size += len(piece) + 2
    return [p for p in parts if p]


def _slug(path: Path) -> str:
    rel = str(path).lstrip("/").removeprefix("usr/share/")
    rel = rel[:-3] if rel.endswith(".gz") else rel
    return re.sub(r"[^A-Za-z0-9._-]+", "_", rel)[:80]


def _fingerprint(docs: Path, entries: list[dict[str, Any]]) -> str:
    """sha256 over the pool's documents in order (names and texts): two results files were
    measured on the same corpora iff their fingerprints (and sizes) match. The pool depends on
    the packages installed when it was built, which is why it is cached and fingerprinted."""
    h = hashlib.sha256()
    for e in entries:
        h.update(e["name"].encode() + b"\0" + (docs / e["name"]).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_pool(work: Path, *, max_doc_chars: int, seed: int,
               log: Any) -> tuple[Path, dict[str, Any]]:
    """The cached, shuffled pool of documents: (folder of .txt files, pool.json contents)."""
    key = hashlib.sha256(
        json.dumps([POOL_VERSION, max_doc_chars, seed, DEDUP_PARAGRAPH_CHARS, MIN_DOC_CHARS])
        .encode()).hexdigest()[:10]
    folder = work / f"pool-{key}"
    meta_path = folder / "pool.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if "fingerprint" not in meta:  # a pool cached by an earlier version of this script
            meta["fingerprint"] = _fingerprint(folder / "docs", meta["entries"])
            tmp_meta = meta_path.with_suffix(f".tmp-{os.getpid()}")
            tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp_meta, meta_path)
        return folder / "docs", meta
    log(f"building the document pool in {folder} (once; man pages and /usr/share/doc)...")
    started = time.perf_counter()
    tmp = work / f".tmp-pool-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "docs").mkdir(parents=True)
    seed_texts = {hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in SEEDS}
    seen_paragraphs: set[bytes] = set()
    seen_texts: set[str] = set(seed_texts)
    docs: list[dict[str, Any]] = []
    stats = {"man_files": 0, "doc_files": 0, "sources_used": 0, "sources_skipped": 0,
             "paragraphs_dropped_as_repeats": 0, "documents_dropped_as_duplicates": 0}
    sources = sorted({*(("man", p) for p in _man_sources()), *(("doc", p) for p in _doc_sources())},
                     key=lambda s: str(s[1]))
    for kind, path in sources:
        stats[f"{kind}_files"] += 1
        raw = _read_text(path)
        text = roff_to_text(raw) if raw is not None and kind == "man" else raw
        kept: list[str] = []
        for p in _paragraphs(text or ""):
            if len(p) >= DEDUP_PARAGRAPH_CHARS:
                key16 = hashlib.blake2b(" ".join(p.split()).encode(), digest_size=16).digest()
                if key16 in seen_paragraphs:
                    stats["paragraphs_dropped_as_repeats"] += 1
                    continue
                seen_paragraphs.add(key16)
            kept.append(p)
        parts = [p for p in _split(kept, max_doc_chars) if sum(map(len, p)) >= MIN_DOC_CHARS] \
            if sum(map(len, kept)) >= MIN_DOC_CHARS else []
        if not parts:
            stats["sources_skipped"] += 1
            continue
        stats["sources_used"] += 1
        for i, part in enumerate(parts):
            body = "\n\n".join(part)
            digest = hashlib.sha256(body.encode()).hexdigest()
            if digest in seen_texts:
                stats["documents_dropped_as_duplicates"] += 1
                continue
            seen_texts.add(digest)
            where = f" (part {i + 1} of {len(parts)})" if len(parts) > 1 else ""
            docs.append({"source": str(path), "part": i + 1, "parts": len(parts),
                         "text": f"source: {path}{where}\n\n{body}\n"})
    random.Random(seed).shuffle(docs)
    entries = []
    for n, d in enumerate(docs):
        name = f"d{n:06d}_{_slug(Path(d['source']))}" + (f".p{d['part']}" if d["parts"] > 1
                                                        else "") + ".txt"
        (tmp / "docs" / name).write_text(d["text"], encoding="utf-8")
        entries.append({"name": name, "chars": len(d["text"]), "split": d["parts"] > 1})
    meta = {"version": POOL_VERSION, "max_doc_chars": max_doc_chars, "seed": seed,
            "documents": len(entries), "stats": stats,
            "fingerprint": _fingerprint(tmp / "docs", entries),
            "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 1), "entries": entries}
    (tmp / "pool.json").write_text(json.dumps(meta), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log(f"pool: {len(entries)} documents from {stats['sources_used']} files in "
        f"{meta['build_seconds']} s")
    return folder / "docs", meta


@dataclass
class Corpus:
    path: Path
    documents: int
    chars: int
    split_parts: int  # documents that are a part of a longer file
    names: list[str] = field(default_factory=list)  # non-seed document names


def make_corpus(pool_docs: Path, meta: dict[str, Any], size: int, dest: Path) -> Corpus:
    """Seeds + the first size-5 pool documents, hard-linked (copied if links fail) into dest."""
    seeds = SEEDS
    if size < len(seeds):
        raise ValueError(f"size {size} is smaller than the {len(seeds)} seed articles")
    entries = meta["entries"][: size - len(seeds)]
    if len(entries) < size - len(seeds):
        raise ValueError(f"the pool has only {meta['documents']} documents (+{len(seeds)} "
                         f"seeds); lower --max-doc-chars to split files into more documents")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    chars = 0
    for seed in seeds:
        shutil.copyfile(seed, dest / seed.name)
        chars += len(seed.read_text(encoding="utf-8"))
    for e in entries:
        try:
            os.link(pool_docs / e["name"], dest / e["name"])
        except OSError:
            shutil.copyfile(pool_docs / e["name"], dest / e["name"])
        chars += e["chars"]
    return Corpus(dest, size, chars, sum(1 for e in entries if e["split"]),
                  [e["name"] for e in entries])


def append_sentence(path: Path, n: int) -> None:
    """Append a sentence to a document without touching the pool file it may be linked to."""
    text = path.read_text(encoding="utf-8")
    path.unlink()
    path.write_text(text + f"\nBenchmark edit {n}: one sentence appended to measure a "
                    "one-document update.\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# measured subprocesses


@dataclass
class Measured:
    seconds: float
    returncode: int
    max_rss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False
    cpu_s: float = 0.0  # user + system

    def check(self, what: str) -> Measured:
        if self.timed_out:
            raise RuntimeError(f"{what}: timed out after {self.seconds:.0f} s")
        if self.returncode != 0:
            tail = (self.stderr.strip() or self.stdout.strip())[-600:]
            raise RuntimeError(f"{what}: exit code {self.returncode}: {tail}")
        return self


# A forked child starts with its parent's peak RSS in its rusage (Linux keeps the high-water
# mark across fork and exec), so a command measured straight from this process would report
# at least this process's RSS (hundreds of MB while the pool is built). Every measured command
# is therefore started by this small launcher (python -S: ~10 MB), which spawns the command,
# forwards SIGTERM/SIGINT to it, and writes the command's own wall time, exit status and
# rusage (os.wait4) to a JSON file.
_LAUNCHER = """
import json, os, signal, sys, time
out, argv = sys.argv[1], sys.argv[2:]
pid = None
def forward(signum, frame):
    if pid is not None:
        os.kill(pid, signum)
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
t0 = time.monotonic()
try:
    pid = os.posix_spawnp(argv[0], argv, os.environ)
except OSError as exc:
    print(f"cannot run {argv[0]}: {exc}", file=sys.stderr)
    sys.exit(127)
with open(out + ".tmp", "w") as fh:
    json.dump({"spawned": t0}, fh)
os.replace(out + ".tmp", out)
while True:
    try:
        _, status, ru = os.wait4(pid, 0)
        break
    except ChildProcessError:
        sys.exit(1)
wall = time.monotonic() - t0
code = os.waitstatus_to_exitcode(status)
with open(out + ".tmp", "w") as fh:
    json.dump({"spawned": t0, "seconds": wall, "code": code, "maxrss_kib": ru.ru_maxrss,
               "cpu_s": ru.ru_utime + ru.ru_stime}, fh)
os.replace(out + ".tmp", out)
sys.exit(code if code >= 0 else 128 - code)
"""


def launched(cmd: list[str], stats: Path) -> list[str]:
    """cmd, run by the launcher, which writes its measurements to stats."""
    return [sys.executable, "-S", "-c", _LAUNCHER, str(stats), *cmd]


def read_stats(stats: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(stats.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the launcher's process group (its own session: the launcher and the command)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float,
        logs: Path) -> Measured:
    """Run one command to completion through the launcher: its wall time, exit code, peak
    RSS and CPU time, and its output (kept in logs). Killed after timeout seconds."""
    logs.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%H%M%S')}-{Path(cmd[0]).name}-{cmd[1] if len(cmd) > 1 else ''}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60] + "-" + os.urandom(3).hex()
    out_path, err_path = logs / f"{stem}.out", logs / f"{stem}.err"
    stats_path = logs / f"{stem}.rusage.json"
    timed_out = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(launched(cmd, stats_path), stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                   start_new_session=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process)
            process.wait()
        seconds = time.monotonic() - started
    stats = read_stats(stats_path)
    if "code" not in stats:
        if process.returncode == 127 and not timed_out:
            raise FileNotFoundError(err_path.read_text(errors="replace").strip())
        stats = {"seconds": seconds, "code": process.returncode, "maxrss_kib": 0, "cpu_s": 0}
    return Measured(float(stats["seconds"]), int(stats["code"]), stats["maxrss_kib"] / 1024,
                    out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                    timed_out, float(stats["cpu_s"]))


# --------------------------------------------------------------------------------------------
# reading what the tool reports


def _find_int(obj: Any, key: str) -> int | None:
    """The first integer value under `key` anywhere in a JSON object (breadth first)."""
    queue = [obj]
    while queue:
        item = queue.pop(0)
        if isinstance(item, dict):
            if isinstance(item.get(key), int) and not isinstance(item.get(key), bool):
                return int(item[key])
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
    return None


_SUMMARY = re.compile(r"indexed (\d+) documents?, (\d+) chunks?")


def index_counts(result: Measured | None, index_dir: Path) -> dict[str, Any]:
    """Documents and chunks of a build, from the most direct source available:
    `qa index --json` output, then its summary line, then the live manifest(s)."""
    if result is not None:
        for stream in (result.stdout, result.stderr):
            try:
                data = json.loads(stream)
            except ValueError:
                continue
            chunks = _find_int(data, "chunks")
            if chunks is not None:
                return {"documents": _find_int(data, "documents"), "chunks": chunks,
                        "counts_from": "qa index --json", "report": data}
        m = _SUMMARY.search(result.stderr) or _SUMMARY.search(result.stdout)
        if m:
            return {"documents": int(m.group(1)), "chunks": int(m.group(2)),
                    "counts_from": "qa index summary line"}
    return manifest_counts(index_dir)


def manifest_counts(index_dir: Path) -> dict[str, Any]:
    """Counts from the live manifest: the generation CURRENT names, else the shallowest
    manifest*.json holding a chunk count, else the sum over all manifests (segments)."""
    def counts(path: Path) -> tuple[int | None, int | None]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, None
        c = data.get("counts", data) if isinstance(data, dict) else data
        return _find_int(c, "documents"), _find_int(c, "chunks")

    current = index_dir / "CURRENT"
    if current.is_file():
        live = index_dir / current.read_text(encoding="utf-8").strip() / "manifest.json"
        docs, chunks = counts(live)
        if chunks is not None:
            return {"documents": docs, "chunks": chunks, "counts_from": str(live)}
    found = sorted(index_dir.rglob("manifest*.json"),
                   key=lambda p: (len(p.relative_to(index_dir).parts), -p.stat().st_mtime))
    with_counts = [(p, *counts(p)) for p in found]
    with_counts = [row for row in with_counts if row[2] is not None]
    if not with_counts:
        return {"documents": None, "chunks": None, "counts_from": None}
    top = with_counts[0]
    depth = len(top[0].relative_to(index_dir).parts)
    if depth == 1 or sum(1 for r in with_counts if len(r[0].relative_to(index_dir).parts)
                         == depth) == 1:
        return {"documents": top[1], "chunks": top[2], "counts_from": str(top[0])}
    same = [r for r in with_counts if len(r[0].relative_to(index_dir).parts) == depth]
    return {"documents": sum(r[1] or 0 for r in same), "chunks": sum(r[2] or 0 for r in same),
            "counts_from": f"sum of {len(same)} manifests"}


def tree_bytes(path: Path) -> int:
    """Apparent size of all regular files under path."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def bytes_by_name(path: Path) -> dict[str, int]:
    """Bytes per file name (the generation / segment folders merged), largest first."""
    sizes: dict[str, int] = {}
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(path).parts
            key = "/".join(rel[1:]) if len(rel) > 1 else rel[0]
            key = re.sub(r"\d{3,}", "N", key)  # numbered shards of one kind count together
            sizes[key] = sizes.get(key, 0) + p.stat().st_size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def manifest_embedder(index_dir: Path) -> str | None:
    """The embedder id recorded in the live manifest (None if it cannot be found)."""
    current = index_dir / "CURRENT"
    paths = [index_dir / current.read_text().strip() / "manifest.json"] if current.is_file() \
        else sorted(index_dir.rglob("manifest*.json"))
    for p in paths:
        try:
            emb = json.loads(p.read_text(encoding="utf-8")).get("embedder")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(emb, dict) and emb.get("id"):
            return str(emb["id"])
        if isinstance(emb, str):
            return emb
    return None


# --------------------------------------------------------------------------------------------
# one installation


@dataclass
class Install:
    label: str
    qa: Path
    version: str = "?"
    has_embedder_option: bool = False
    has_index_json: bool = False
    commit: str | None = None

    def probe(self, env: dict[str, str], work: Path) -> None:
        logs = work / "logs"
        v = run([str(self.qa), "--version"], env=env, cwd=work, timeout=120, logs=logs)
        self.version = (v.stdout.strip() or v.stderr.strip() or "?").splitlines()[-1]
        helptext = run([str(self.qa), "index", "--help"], env=env, cwd=work, timeout=120,
                       logs=logs).check("qa index --help").stdout
        self.has_embedder_option = "--embedder" in helptext
        self.has_index_json = re.search(r"--json\b", helptext) is not None
        python = self.python()
        if python is not None:  # the source commit, when qa is installed from a git checkout
            r = run([str(python), "-c", "import os, qa; print(os.path.dirname(qa.__file__))"],
                    env=env, cwd=work, timeout=120, logs=logs)
            where = r.stdout.strip()
            if r.returncode == 0 and where:
                g = run(["git", "-C", where, "describe", "--always", "--dirty"], env=env,
                        cwd=work, timeout=60, logs=logs)
                if g.returncode == 0:
                    self.commit = g.stdout.strip()

    def python(self) -> Path | None:
        p = self.qa.with_name("python")
        return p if p.exists() else None


_ANN_SCRIPT = """
import json, sys
from pathlib import Path
try:
    from qa.index import ann_recall
except (ImportError, AttributeError) as exc:
    print(json.dumps({"recall": None, "why": f"n/a ({exc.__class__.__name__}: {exc})"}))
    sys.exit(0)
args = json.loads(sys.argv[1])
value = ann_recall(Path(args["index"]), args["embedder"], args["questions"], k=10)
print(json.dumps({"recall": float(value), "why": None}))
"""


def ann_recall(install: Install, index_dir: Path, embedder: str, qs: list[str],
               env: dict[str, str], cwd: Path, timeout: float, logs: Path) -> dict[str, Any]:
    python = install.python()
    if python is None:
        return {"recall": None, "why": f"n/a (no python next to {install.qa})"}
    arg = json.dumps({"index": str(index_dir), "embedder": embedder, "questions": qs})
    r = run([str(python), "-c", _ANN_SCRIPT, arg], env=env, cwd=cwd, timeout=timeout, logs=logs)
    if r.returncode != 0 or r.timed_out:
        return {"recall": None, "why": "error: " + (r.stderr.strip()[-300:] or "timed out")}
    try:
        out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
        return out
    except (ValueError, IndexError):
        return {"recall": None, "why": f"error: unreadable output {r.stdout[-200:]!r}"}


def _median(values: list[float], digits: int = 3) -> float | None:
    return round(statistics.median(values), digits) if values else None


def bench_one(install: Install, embedder: str | None, size: int, *, pool_docs: Path,
              pool_meta: dict[str, Any], args: argparse.Namespace, base_env: dict[str, str],
              log: Any) -> dict[str, Any]:
    """Every measurement for one installation x embedder x size. A failing step is recorded
    in row["errors"]; the later steps still run if the index was built."""
    row: dict[str, Any] = {"label": install.label, "qa_bin": str(install.qa),
                           "qa_version": install.version, "qa_commit": install.commit,
                           "embedder_requested": embedder, "size": size, "errors": [],
                           "loadavg_start": round(os.getloadavg()[0], 2)}
    tag = f"[{install.label} {embedder or 'default'} {size}]"
    run_dir = args.work / "runs" / re.sub(r"[^A-Za-z0-9._-]+", "_",
                                          f"{install.label}-{embedder or 'default'}") / str(size)
    logs = run_dir / "logs"
    index_dir = run_dir / "index"
    env = dict(base_env)
    emb_opt: list[str] = []
    if embedder:
        env["QA_EMBEDDER"] = embedder
        if install.has_embedder_option:
            emb_opt = ["--embedder", embedder]
    qa = str(install.qa)
    json_opt = ["--json"] if install.has_index_json else []

    def failed(step: str, exc: Exception) -> None:
        row["errors"].append(f"{step}: {exc.__class__.__name__}: {str(exc)[-600:]}")
        log(f"  {tag} error: {row['errors'][-1]}")

    # 1. the full build; nothing else can run without it
    try:
        corpus = make_corpus(pool_docs, pool_meta, size, run_dir / "corpus")
        row.update(documents=corpus.documents, corpus_chars=corpus.chars,
                   split_documents=corpus.split_parts)
        shutil.rmtree(index_dir, ignore_errors=True)
        paths = ["--corpus", str(corpus.path), "--index", str(index_dir)]
        log(f"  {tag} qa index (full build of {corpus.chars:,} chars)...")
        r = run([qa, "index", *paths, *emb_opt, *json_opt], env=env, cwd=run_dir,
                timeout=args.timeout, logs=logs).check("qa index")
        counts = index_counts(r, index_dir)
        row.update(index_s=round(r.seconds, 3), index_cpu_s=round(r.cpu_s, 3),
                   index_rss_mb=round(r.max_rss_mb, 1),
                   index_chars_per_s=round(corpus.chars / r.seconds),
                   chunks=counts["chunks"], counts_from=counts["counts_from"],
                   index_bytes=tree_bytes(index_dir), index_bytes_by_file=bytes_by_name(index_dir))
        if counts.get("report") is not None:
            row["index_report"] = counts["report"]
        if counts["documents"] not in (None, size):
            row["errors"].append(f"qa index reports {counts['documents']} documents, "
                                 f"expected {size} (skipped files?)")
        if counts["chunks"]:
            row["bytes_per_chunk"] = round(row["index_bytes"] / counts["chunks"])
        row["embedder"] = manifest_embedder(index_dir) or embedder or "default"
    except Exception as exc:
        failed("index", exc)
        return _cleanup(row, index_dir, args)

    # 2. one-document updates, a different document each time
    try:
        log(f"  {tag} one-document updates x{args.repeats}...")
        picks = random.Random(args.seed + size).sample(corpus.names,
                                                       min(args.repeats, len(corpus.names)))
        updates, update_cpu, update_rss = [], [], []
        for n, name in enumerate(picks):
            append_sentence(corpus.path / name, n)
            r = run([qa, "index", *paths, *emb_opt, *json_opt], env=env, cwd=run_dir,
                    timeout=args.timeout, logs=logs).check("qa index (update)")
            updates.append(r.seconds)
            update_cpu.append(r.cpu_s)
            update_rss.append(r.max_rss_mb)
            m = re.search(r"changed (\d+)", r.stderr + r.stdout)
            if m and m.group(1) != "1":
                row["errors"].append(f"update {n}: qa index reports changed {m.group(1)}")
        row.update(update_s=_median(updates), update_cpu_s=_median(update_cpu),
                   update_rss_mb=_median(update_rss, 1),
                   index_bytes_after_updates=tree_bytes(index_dir))
    except Exception as exc:
        failed("update", exc)

    # 3. cold asks
    try:
        log(f"  {tag} cold qa ask x{args.repeats}...")
        colds, cold_cpu, cold_rss, cites, answers = [], [], [], [], []
        for _ in range(args.repeats):
            r = run([qa, "ask", ASK_QUESTION, "--json", *paths, *emb_opt], env=env,
                    cwd=run_dir, timeout=args.ask_timeout, logs=logs).check("qa ask")
            colds.append(r.seconds)
            cold_cpu.append(r.cpu_s)
            cold_rss.append(r.max_rss_mb)
            result = json.loads(r.stdout)
            span = result.get("answer_span") or {}
            answers.append(span.get("doc_id"))
            cites.append(any(c.get("doc_id") == SEED_DOC for c in result.get("citations", [])))
        row.update(ask_cold_s=_median(colds), ask_cold_cpu_s=_median(cold_cpu),
                   ask_cold_rss_mb=_median(cold_rss, 1), ask_answer_doc=answers[-1],
                   ask_answer_is_seed=answers[-1] == SEED_DOC, ask_seed_cited=all(cites))
        if len(set(answers)) > 1:
            row["errors"].append(f"cold asks gave different answer documents: {answers}")
    except Exception as exc:
        failed("cold ask", exc)

    # 4. serve ready and warm asks
    try:
        log(f"  {tag} qa serve: ready time, then {args.rounds} x {args.questions} asks...")
        row.update(serve(install, paths, emb_opt, env, run_dir, args))
    except Exception as exc:
        failed("serve", exc)
    if row.get("chunks") is None and row.get("serve_chunks"):
        row.update(chunks=row["serve_chunks"], counts_from="GET /healthz")
        row["bytes_per_chunk"] = round(row["index_bytes"] / row["chunks"])

    # 5. ANN recall, if the installation can compute it
    spec = embedder or row.get("embedder") or "use-m3"
    recall = ann_recall(install, index_dir, spec, questions()[: args.questions], env, run_dir,
                        args.timeout, logs)
    row["ann_recall_at_10"] = recall["recall"]
    if recall["recall"] is None:
        row["ann_recall_note"] = recall["why"]
    return _cleanup(row, index_dir, args)


def _cleanup(row: dict[str, Any], index_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    row["loadavg_end"] = round(os.getloadavg()[0], 2)
    if not args.keep_indexes:
        shutil.rmtree(index_dir, ignore_errors=True)
    return row


def serve(install: Install, paths: list[str], emb_opt: list[str], env: dict[str, str],
          run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = run_dir / "logs" / f"serve-{port}.log"
    stats_path = run_dir / "logs" / f"serve-{port}.rusage.json"
    command = [str(install.qa), "serve", "--host", "127.0.0.1", "--port", str(port),
               *paths, *emb_opt]
    started = time.monotonic()
    process = start_server(launched(command, stats_path), log=log_path, env=env, cwd=run_dir,
                           new_session=True)
    out: dict[str, Any] = {}
    try:
        wait_ready(process, url, log_path, timeout=args.timeout)
        ready = time.monotonic()
        # from the command's start (the launcher's own start-up is not counted)
        out["serve_ready_s"] = round(ready - read_stats(stats_path).get("spawned", started), 3)
        qs = questions()[: args.questions]
        latencies: list[float] = []
        errors = 0
        with httpx.Client(base_url=url, timeout=args.ask_timeout) as client:
            health = client.get("/healthz").json()
            out["serve_chunks"] = health.get("chunks")
            client.post("/ask", json={"question": qs[0], "k": 5})  # warm-up, not counted
            for _ in range(args.rounds):
                for q in qs:
                    t0 = time.perf_counter()
                    try:
                        ok = client.post("/ask", json={"question": q, "k": 5}).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok
        ms = sorted(v * 1000 for v in latencies)
        out.update(warm_p50_ms=round(percentile(ms, 50), 2),
                   warm_p95_ms=round(percentile(ms, 95), 2), warm_requests=len(ms),
                   warm_errors=errors)
    finally:
        stop_server(process)  # SIGTERM to the launcher, which forwards it to qa serve
        kill_group(process)  # whatever is left of the group, if stop_server had to kill
        process.wait(30)
    rss = read_stats(stats_path).get("maxrss_kib")
    if rss:
        out["serve_rss_mb"] = round(rss / 1024, 1)
    return out


# --------------------------------------------------------------------------------------------
# reports

COLUMNS = [
    ("label", "label", "{}"), ("embedder", "embedder", "{}"), ("size", "docs", "{:,}"),
    ("split_documents", "split", "{:,}"), ("chunks", "chunks", "{:,}"),
    ("index_s", "index s", "{:.2f}"), ("index_chars_per_s", "chars/s", "{:,}"),
    ("index_rss_mb", "index RSS MB", "{:.0f}"), ("index_bytes", "index MB", "mb"),
    ("bytes_per_chunk", "B/chunk", "{:,}"), ("update_s", "update s", "{:.2f}"),
    ("ask_cold_s", "cold ask s", "{:.2f}"), ("ask_cold_rss_mb", "ask RSS MB", "{:.0f}"),
    ("ask_answer_is_seed", "answer=003", "yn"), ("serve_ready_s", "ready s", "{:.2f}"),
    ("warm_p50_ms", "warm p50 ms", "{:.1f}"), ("warm_p95_ms", "warm p95 ms", "{:.1f}"),
    ("serve_rss_mb", "serve RSS MB", "{:.0f}"), ("ann_recall_at_10", "recall@10", "{:.3f}"),
    ("load", "load", "{}"),
]


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if fmt == "mb":
        return f"{value / 1e6:.1f}"
    if fmt == "yn":
        return "yes" if value else "no"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown(results: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in results["runs"]:
        row = row | {"embedder": _embedder(row),
                     "load": f"{row.get('loadavg_start', '?')}→{row.get('loadavg_end', '?')}"}
        lines.append("| " + " | ".join(_cell(row.get(k), f) for k, _, f in COLUMNS) + " |")
    notes = [f"- {r['label']} {_embedder(r)} {r['size']}: {e}"
             for r in results["runs"] for e in r["errors"]]
    pool = results["corpus"]
    text = "\n".join(lines) + "\n\n" + (
        f"Corpus: the 5 seed articles + man pages and /usr/share/doc text ({pool['documents']:,}"
        f" pool documents from {pool['stats']['sources_used']:,} files, fingerprint "
        f"{pool.get('fingerprint')}; files over "
        f"{pool['max_doc_chars']:,} chars split at paragraphs, *split* = documents that are such"
        f" parts). Times are medians of {results['settings']['repeats']} (update, cold ask); "
        f"warm = {results['settings']['rounds']} rounds x {results['settings']['questions']} "
        f"POST /ask, one at a time. *answer=003* = the cold ask's answer cites {SEED_DOC}. "
        f"*load* = 1-minute load average at the start and end of the run "
        f"({results['machine']['cpus']} CPUs): the machine is shared, and CPU seconds are in "
        f"the JSON.\n")
    text += "\nInstallations:\n" + "\n".join(
        f"- {i['label']}: {i['qa_bin']}, "
        + (f"error: {i['error']}" if "error" in i else
           f"{i['version']}, commit {i.get('commit') or 'unknown'}")
        for i in results["installs"]) + "\n"
    if notes:
        text += "\nErrors and warnings:\n" + "\n".join(notes) + "\n"
    return text


def _embedder(row: dict[str, Any]) -> str:
    """The embedder the index reports, else the one asked for, else 'default'."""
    return str(row.get("embedder") or row.get("embedder_requested") or "default")


PLOTTED = [("index_s", "full index"), ("update_s", "1-doc update"), ("ask_cold_s", "cold ask"),
           ("warm_p50_ms", "warm ask p50"), ("serve_ready_s", "serve ready")]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    series: dict[str, list[dict[str, Any]]] = {}
    for row in results["runs"]:
        name = f"{row['label']}, {_embedder(row)}"
        series.setdefault(name, []).append(row)
    styles = ["-", "--", ":", "-."]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for s, (name, rows) in enumerate(series.items()):
        rows = sorted(rows, key=lambda r: r["size"])
        for m, (key, what) in enumerate(PLOTTED):
            pts = [(r["size"], r[key] / (1000 if key.endswith("_ms") else 1)) for r in rows
                   if r.get(key)]
            if pts:
                ax.plot(*zip(*pts, strict=True), styles[s % len(styles)], marker="o",
                        color=colors[m % len(colors)], label=f"{what} ({name})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("documents")
    ax.set_ylabel("seconds")
    ax.set_title("qa at scale (medians)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--sizes", default="1000,10000,50000",
                        help="comma-separated corpus sizes in documents (default 1000,10000,50000)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-scale"),
                        help="pool, corpora, indexes, logs, XDG_CACHE_HOME (default /tmp/qa-scale)")
    parser.add_argument("--qa-bin", type=Path, action="append", default=None,
                        help="a qa executable to measure, repeatable "
                             "(default: the qa of this python)")
    parser.add_argument("--label", action="append", default=None,
                        help="name of each --qa-bin, in the same order")
    parser.add_argument("--embedder", action="append", default=None,
                        help="embedder spec(s), repeatable or comma-separated "
                             "[default: the tool's default]")
    parser.add_argument("--repeats", type=int, default=3,
                        help="one-document updates and cold asks (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of warm asks (default 3)")
    parser.add_argument("--questions", type=int, default=30,
                        help="questions per round of warm asks (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="order of the pool (default 0)")
    parser.add_argument("--max-doc-chars", type=int, default=5000,
                        help="longer texts are split at paragraphs into several documents "
                             "(default 5000)")
    parser.add_argument("--timeout", type=float, default=6 * 3600,
                        help="seconds allowed for one qa index, or for qa serve to get ready "
                             "(default 6 h)")
    parser.add_argument("--ask-timeout", type=float, default=600,
                        help="seconds allowed for one qa ask or one HTTP request (default 600)")
    parser.add_argument("--keep-indexes", action="store_true",
                        help="keep each run's index in --work/runs (default: delete it)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default benchmarks/results/scale-<label>.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "scale.png",
                        help="log-log PNG (default benchmarks/scale.png)")
    args = parser.parse_args()

    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes takes comma-separated integers, not {args.sizes!r}")
    if not sizes:
        parser.error("--sizes is empty")
    bins = args.qa_bin or [Path(qa_command()[0])]
    labels = args.label or []
    if len(labels) > len(bins):
        parser.error("more --label than --qa-bin")
    labels += [("current" if not args.qa_bin else b.resolve().parent.parent.name)
               for b in bins[len(labels):]]
    if len(set(labels)) != len(labels):
        parser.error(f"labels must differ: {labels}")
    embedders: list[str | None] = [e.strip() for spec in (args.embedder or [])
                                   for e in spec.split(",") if e.strip()] or [None]
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.out or ROOT / "benchmarks" / "results" / f"scale-{'_vs_'.join(labels)}.json"

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    pool_docs, pool_meta = build_pool(args.work, max_doc_chars=args.max_doc_chars,
                                      seed=args.seed, log=log)
    too_big = [n for n in sizes if n > pool_meta["documents"] + len(SEEDS)]
    if too_big or sizes[0] < len(SEEDS):
        parser.error(f"sizes must be between {len(SEEDS)} (the seed articles) and "
                     f"{pool_meta['documents'] + len(SEEDS)} (the pool, with --max-doc-chars "
                     f"{args.max_doc_chars}; a smaller value splits files into more documents)")
    split_total = sum(1 for e in pool_meta["entries"] if e["split"])
    log(f"pool: {pool_meta['documents']:,} documents, {split_total:,} of them parts of files "
        f"longer than {args.max_doc_chars:,} chars split at paragraph boundaries")

    results: dict[str, Any] = {
        "benchmark": "qa at scale: index, update, cold ask, serve ready, warm ask",
        "command": " ".join(["python", "benchmarks/scale.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": {"sizes": sizes, "repeats": args.repeats, "rounds": args.rounds,
                     "questions": args.questions, "seed": args.seed, "question": ASK_QUESTION,
                     "work": str(args.work)},
        "corpus": {k: v for k, v in pool_meta.items() if k != "entries"}
        | {"split_documents": split_total},
        "installs": [],
        "runs": [],
    }
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    base_env["HF_HUB_OFFLINE"] = "1"
    for qa_bin, label in zip(bins, labels, strict=True):
        install = Install(label, qa_bin.absolute())
        env = base_env | {"XDG_CACHE_HOME": str(args.work / "cache" / re.sub(r"\W+", "_", label))}
        try:
            install.probe(env, args.work)
        except Exception as exc:
            log(f"{label}: cannot run {qa_bin}: {exc}")
            results["installs"].append({"label": label, "qa_bin": str(qa_bin),
                                        "error": str(exc)})
            continue
        results["installs"].append({"label": label, "qa_bin": str(install.qa),
                                    "version": install.version, "commit": install.commit,
                                    "embedder_option": install.has_embedder_option,
                                    "index_json": install.has_index_json})
        for embedder in embedders:
            warm = make_corpus(pool_docs, pool_meta, 5, args.work / "runs" / "warmup-corpus")
            warm_env = env | ({"QA_EMBEDDER": embedder} if embedder else {})
            warm_opt = ["--embedder", embedder] if embedder and install.has_embedder_option \
                else []
            shutil.rmtree(args.work / "runs" / "warmup-index", ignore_errors=True)
            r = run([str(install.qa), "index", "--corpus", str(warm.path), "--index",
                     str(args.work / "runs" / "warmup-index"), *warm_opt], env=warm_env,
                    cwd=args.work, timeout=args.timeout, logs=args.work / "logs")
            if r.returncode != 0:
                log(f"{label}: warm-up index failed: {r.stderr.strip()[-300:]}")
            for size in sizes:
                log(f"{label} / {embedder or 'default embedder'} / {size:,} documents")
                row = bench_one(install, embedder, size, pool_docs=pool_docs,
                                pool_meta=pool_meta, args=args, base_env=env, log=log)
                results["runs"].append(row)
                out.parent.mkdir(parents=True, exist_ok=True)  # written after every size
                out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    table = markdown(results)
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
        log(f"wrote {args.markdown}")
    if args.plot and results["runs"]:
        try:
            plot(results, args.plot)
            log(f"wrote {args.plot}")
        except ImportError:
            log("matplotlib is not installed (pip install -e '.[bench]'): no plot")


if __name__ == "__main__":
    main()
