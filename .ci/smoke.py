"""CI's first stage: what a new user gets from the README's main install alone.

Run in a fresh virtualenv holding only `pip install -e .` (the pip the venv ships, no extras):

    python .ci/smoke.py

It writes one small file of each format (.txt, .md, .pdf, .html, .docx) in a temporary folder,
then runs the real `qa` command: `qa index` must read every file (none skipped), `qa ask` must
answer each file's question from that file, `qa serve` must answer /healthz with 200, and
`qa mcp` must fail with its one-line message naming the [mcp] extra. Standard library only
(plus python-docx, a runtime dependency, to write the Word file). Exits non-zero on the first
failure, naming it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# (file name, its text, a question only that file answers, a word the answer must hold)
FILES = [
    ("lighthouse.txt", "The lighthouse of Brest was painted green in 1911 by the harbour "
     "authority.", "When was the lighthouse of Brest painted green?", "1911"),
    ("harbour.md", "# Harbour notes\n\nThe harbour of Lorient shelters 42 fishing boats in "
     "winter.", "How many fishing boats does the harbour of Lorient shelter?", "42"),
    ("observatory.pdf", "The observatory of Nice opened its great dome in 1965.",
     "When did the observatory of Nice open its dome?", "1965"),
    ("bakery.html", "The bakery of Quimper sells 300 croissants every morning.",
     "How many croissants does the bakery of Quimper sell?", "300"),
    ("bridge.docx", "The bridge of Saint-Nazaire is 3356 metres long.",
     "How long is the bridge of Saint-Nazaire?", "3356"),
]
FILLER = ("This paragraph is here so that the page reads as a short article about the coast of "
          "Brittany, its towns and their history.")


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (no library: offsets computed here)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj 0 -20 Td ({FILLER[:80]}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def _html(text: str) -> str:
    return ("<!doctype html><html><head><title>Quimper</title></head><body>"
            "<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav>"
            f"<article><h1>The bakery</h1><p>{text}</p><p>{FILLER}</p></article>"
            "<footer>Contact us</footer></body></html>")


def write_corpus(folder: Path) -> None:
    import docx  # a runtime dependency of qa

    for name, text, _question, _word in FILES:
        path = folder / name
        if name.endswith(".pdf"):
            path.write_bytes(_pdf(text))
        elif name.endswith(".html"):
            path.write_text(_html(text), encoding="utf-8")
        elif name.endswith(".docx"):
            document = docx.Document()
            document.add_heading("The bridge", level=1)
            document.add_paragraph(text)
            document.add_paragraph(FILLER)
            document.save(str(path))
        else:
            path.write_text(f"{text}\n\n{FILLER}\n", encoding="utf-8")


def qa(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["qa", *args], capture_output=True, text=True, timeout=300,
                          check=False)
    if check and done.returncode != 0:
        fail(f"`qa {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    return done


def fail(message: str) -> None:
    sys.stderr.write(f"smoke: FAILED: {message}\n")
    sys.exit(1)


def say(message: str) -> None:
    sys.stdout.write(f"smoke: {message}\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_serve(corpus: Path, index: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        ["qa", "serve", "--corpus", str(corpus), "--index", str(index), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                fail(f"`qa serve` exited {server.returncode}: {server.stderr.read()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        say(f"qa serve: /healthz 200 on 127.0.0.1:{port}")
                        return
            except OSError:
                time.sleep(0.3)
        fail("`qa serve` did not answer /healthz with 200 within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        write_corpus(corpus)
        where = ["--corpus", str(corpus), "--index", str(index)]
        done = qa("index", *where)
        if "warning:" in done.stderr or "skipped 0 file(s)" not in done.stderr:
            fail(f"`qa index` skipped or warned:\n{done.stderr}")
        say(f"qa index: all {len(FILES)} formats read, none skipped")
        for name, _text, question, word in FILES:
            result = json.loads(qa("ask", question, "--json", *where).stdout)
            span = result.get("answer_span") or {}
            if result.get("abstained") or span.get("doc_id") != name:
                fail(f"{question!r} was answered from {span.get('doc_id')!r}, not {name!r}: "
                     f"{result.get('answer')!r}")
            if word not in (result.get("answer") or ""):
                fail(f"{question!r}: the answer {result.get('answer')!r} lacks {word!r}")
            say(f"qa ask: {name} answers {question!r}")
        check_serve(corpus, index)
        done = qa("mcp", "--index", str(index), check=False)
        if done.returncode == 0 or "pip install 'qa[mcp]'" not in done.stderr:
            fail(f"`qa mcp` without the extra: exit {done.returncode}, {done.stderr.strip()!r}")
        say(f"qa mcp: {done.stderr.strip()}")
    say("passed")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
