"""Fetch the real evaluation corpora from Debian's package registry (nothing large is committed).

    python eval/fetch_corpora.py [--dest DIR]

Downloads the packages with `apt-get download` (no root needed, no install), unpacks them with
`dpkg-deb -x` and lays out one folder per corpus under DIR (default: $XDG_CACHE_HOME/qa/corpora,
i.e. ~/.cache/qa/corpora):

    debian-reference-fr/   the Debian Reference in French: DocBook HTML, one page a chapter
    debian-reference-en/   the same book in English
    debian-reference-pdf/  both PDF editions (debian-reference.fr.pdf, debian-reference.en.pdf)
    python-docs/           Python 3.11's Sphinx HTML: tutorial/, howto/, faq/ (doc ids keep them)
    python-docs-sources/   the reStructuredText each python-docs page was built from (ground truth
                           for benchmarks/extraction.py)
    debian-handbook-fr/    The Debian Administrator's Handbook in French (DocBook HTML, 127 pages):
                           measured by benchmarks/extraction.py only; no question set is tuned on it

The package versions are pinned below so that question sets' evidence stays valid; a version the
registry no longer serves is an error naming it (update the pin and re-check the question sets).
Prints the corpus folders. Re-running reuses what is already there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGES = {
    "debian-reference-fr": "2.100",
    "debian-reference-en": "2.100",
    "python3.11-doc": "3.11.2-6+deb12u9",
    "debian-handbook": "11.20220922",
}
PYTHON_SECTIONS = ("tutorial", "howto", "faq")


def default_dest() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "qa" / "corpora"


def _download(work: Path) -> Path:
    """Downloads and unpacks the pinned packages into work/root; returns that root."""
    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    for name, version in PACKAGES.items():
        spec = f"{name}={version}"
        done = subprocess.run(["apt-get", "download", spec], cwd=work, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"error: apt-get download {spec} failed (run 'apt-get update' first?): "
                     f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    for deb in sorted(work.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def _copy(files: list[tuple[Path, Path]]) -> None:
    for src, dst in files:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def fetch(dest: Path) -> list[Path]:
    """Lays out the corpora under dest (see the module docstring); returns their folders."""
    names = ["debian-reference-fr", "debian-reference-en", "debian-reference-pdf",
             "python-docs", "python-docs-sources", "debian-handbook-fr"]
    folders = [dest / n for n in names]
    if all(f.is_dir() and any(f.iterdir()) for f in folders):
        return folders
    with tempfile.TemporaryDirectory() as tmp:
        root = _download(Path(tmp))
        ref = root / "usr/share/debian-reference"
        for lang in ("fr", "en"):
            _copy([(p, dest / f"debian-reference-{lang}" / p.name)
                   for p in sorted(ref.glob(f"*.{lang}.html"))])
        _copy([(p, dest / "debian-reference-pdf" / p.name) for p in sorted(ref.glob("*.pdf"))])
        handbook = root / "usr/share/doc/debian-handbook/html/fr-FR"
        _copy([(p, dest / "debian-handbook-fr" / p.name) for p in sorted(handbook.glob("*.html"))])
        html = root / "usr/share/doc/python3.11/html"
        for section in PYTHON_SECTIONS:
            _copy([(p, dest / "python-docs" / p.relative_to(html))
                   for p in sorted((html / section).rglob("*.html"))])
            _copy([(p, dest / "python-docs-sources" / p.relative_to(html / "_sources"))
                   for p in sorted((html / "_sources" / section).rglob("*.txt"))])
    return folders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=default_dest())
    args = ap.parse_args()
    for folder in fetch(args.dest):
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        print(f"{folder}  ({count} files)")


if __name__ == "__main__":
    main()
