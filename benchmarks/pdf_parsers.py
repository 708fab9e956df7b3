"""PDF parsers compared on generated multi-page PDFs, then a 300-page PDF indexed end to end.

    python benchmarks/pdf_parsers.py [--pages 300] [--skip-default]

1. Text quality and speed of pypdfium2 and pypdf on the same PDF: ligatures (the PDF holds
   the "ﬁ" glyph), words hyphenated across lines, a running header and a "Page N" footer on
   every page, and two lines drawn in reverse order on the page (reading order).
2. `build_index` on a corpus holding only that PDF, with the hash embedder (parsing, chunking
   and writing) and with the default embedder (use-m3): pages per second end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from makefiles import make_pdf  # noqa: E402

HEADER = "Rapport annuel 2024 — Observatoire des finances publiques"
SENTENCES = [
    "Le gouvernement a présenté une réforme « ambitieuse » des ﬁnances publiques.",
    "Les députés ont examiné l’efﬁcacité des dépenses de l’État pendant trois semaines.",
    "La Cour des comptes estime que le déﬁcit atteindra 4,4 % du produit intérieur brut.",
    "Les collectivités locales demandent une compensation intégrale des recettes perdues.",
    "Selon le rapporteur, les économies annoncées reposent sur des hypothèses fragiles.",
]


def page_lines(n: int) -> list[str]:
    """About 3,000 characters: wrapped at ~80 columns, one word hyphenated per page."""
    # Every sentence distinct (a note number in each): the index embeds identical texts
    # once, and a PDF repeating five sentences would measure that cache, not the model.
    words = " ".join(SENTENCES[(n + i) % len(SENTENCES)][:-1] + f", selon la note {n}.{i}."
                     for i in range(30)).split()
    lines, line = [], ""
    for w in words:
        if len(line) + len(w) + 1 > 80:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    lines[3] += " Le finan-"  # a word hyphenated across lines
    lines[4] = "cement public " + lines[4]
    return lines


def quality(pages: list[str]) -> dict[str, object]:
    text = "\n".join(pages)
    return {
        "ligatures_left (ﬁ)": text.count("\ufb01"),
        "hyphenated_word_rejoined": text.count("financement") >= len(pages) * 0.9,
        "header_lines_kept": text.count(HEADER),
        "footer_lines_kept": sum(1 for i, p in enumerate(pages)
                                 if p.rstrip().endswith(f"Page {i + 1}")),
    }


def run_pypdfium2(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    out = []
    for page in pdf:
        tp = page.get_textpage()
        out.append(tp.get_text_range().replace("\ufffe", ""))
        tp.close()
        page.close()
    pdf.close()
    return out


def run_pypdf(path: Path) -> list[str]:
    import pypdf

    return [p.extract_text() for p in pypdf.PdfReader(path).pages]


def reading_order(folder: Path) -> dict[str, str]:
    """Which line each library gives first when the lower line is drawn first."""
    from fpdf import FPDF
    from makefiles import unicode_font

    pdf = FPDF()
    pdf.add_font("dv", fname=str(unicode_font()))
    pdf.add_page()
    pdf.set_font("dv", size=11)
    pdf.set_xy(10, 200)
    pdf.cell(0, 6, "Deuxième ligne, en bas de la page.")
    pdf.set_xy(10, 100)
    pdf.cell(0, 6, "Première ligne, en haut de la page.")
    path = folder / "order.pdf"
    pdf.output(str(path))
    out = {}
    for name, fn in [("pypdfium2", run_pypdfium2), ("pypdf", run_pypdf)]:
        text = fn(path)[0]
        out[name] = "top first" if text.find("Première") < text.find("Deuxième") \
            else "content-stream order (bottom first)"
    return out


def index_speed(pdf: Path, embedder_id: str) -> dict[str, float]:
    from qa.embedding import make_embedder
    from qa.index import build_index

    work = Path(tempfile.mkdtemp(prefix="qa-pdfbench-"))
    (work / "corpus").mkdir()
    shutil.copy(pdf, work / "corpus" / "rapport.pdf")
    embedder = make_embedder(embedder_id)
    started = time.perf_counter()
    report = build_index(work / "corpus", work / "index", embedder=embedder)
    seconds = time.perf_counter() - started
    (stats,) = [f for f in report.formats if f.format == "pdf"]
    shutil.rmtree(work)
    return {"pages": stats.pages, "seconds": round(seconds, 2),
            "pages_per_s_end_to_end": round(stats.pages / seconds, 1),
            "pages_per_s_parsing": round(stats.pages_per_second or 0.0, 1),
            "chunks": report.chunks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--skip-default", action="store_true",
                        help="only the hash embedder (no use-m3 run)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-pdf-"))
    pdf = make_pdf(work / "rapport.pdf", [page_lines(i) for i in range(args.pages)],
                   header=HEADER, footer=True)
    results: dict[str, object] = {"pages": args.pages, "bytes": pdf.stat().st_size}
    for name, fn in [("pypdfium2", run_pypdfium2), ("pypdf", run_pypdf)]:
        fn(pdf)  # warm-up (imports, font caches)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            pages = fn(pdf)
            best = min(best, time.perf_counter() - started)
        results[name] = {"pages_per_s": round(args.pages / best, 1), **quality(pages)}
    results["reading_order"] = reading_order(work)
    results["index_hash_embedder"] = index_speed(pdf, "hash")
    if not args.skip_default:
        results["index_use_m3"] = index_speed(pdf, "use-m3")
    shutil.rmtree(work)
    print(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
