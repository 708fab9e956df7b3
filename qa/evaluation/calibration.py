"""Calibration of `confidence`: binned predicted vs observed, and a reliability diagram PNG.

`confidence` is the estimated probability that the answer is right. A question's outcome is
known when qa answered it (right or not) or when it is unanswerable (any answer would have
been wrong); an abstention on an answerable question says nothing about whether its best
sentence was right, so those questions are left out (and counted).

The PNG is drawn here, without matplotlib (which `qa eval` does not depend on): a 10-bin
diagram, observed share right as bars, the diagonal of perfect calibration, and a dot at each
bin's mean predicted probability. Axes run 0..1 on both sides; the numbers are in the
Markdown table beside it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BINS = 10


@dataclass(frozen=True)
class Bin:
    lo: float
    hi: float
    n: int
    predicted: float | None  # mean confidence in the bin
    observed: float | None  # share right in the bin


def reliability(rows: Sequence[Mapping[str, Any]], *, bins: int = BINS) -> tuple[list[Bin], int]:
    """(bins over the questions whose outcome is known, number of questions left out)."""
    known: list[tuple[float, float]] = []
    left_out = 0
    for r in rows:
        conf = r.get("confidence")
        if not isinstance(conf, int | float):
            left_out += 1
            continue
        if r["unanswerable"]:
            known.append((float(conf), 0.0))
        elif not r["abstained"]:
            known.append((float(conf), float(bool(r["correct"]))))
        else:
            left_out += 1
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, y) for p, y in known if lo <= p < hi or (b == bins - 1 and p >= 1.0)]
        n = len(inside)
        out.append(Bin(lo, hi, n, sum(p for p, _ in inside) / n if n else None,
                       sum(y for _, y in inside) / n if n else None))
    return out, left_out


def expected_calibration_error(bins: Sequence[Bin]) -> float | None:
    """Mean |predicted - observed| over bins, weighted by their questions."""
    total = sum(b.n for b in bins)
    if not total:
        return None
    return sum(b.n * abs((b.predicted or 0.0) - (b.observed or 0.0)) for b in bins) / total


# ------------------------------------------------------------------------------- drawing

_SIZE, _MARGIN = 300, 30


def _png(pixels: list[bytearray]) -> bytes:
    height, width = len(pixels), len(pixels[0]) // 3
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def reliability_png(bins: Sequence[Bin]) -> bytes:
    """The reliability diagram as PNG bytes (300x300 plot plus margins)."""
    side = _SIZE + 2 * _MARGIN
    img = [bytearray(b"\xff" * side * 3) for _ in range(side)]

    def put(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < side and 0 <= y < side:
            img[y][3 * x : 3 * x + 3] = bytes(rgb)

    def to_px(px: float, py: float) -> tuple[int, int]:
        return _MARGIN + round(px * _SIZE), _MARGIN + _SIZE - round(py * _SIZE)

    for b in bins:  # bars: observed share right
        if b.n and b.observed is not None:
            x0, y0 = to_px(b.lo, b.observed)
            x1, y1 = to_px(b.hi, 0.0)
            for y in range(y0, y1):
                for x in range(x0 + 2, x1 - 1):
                    put(x, y, (158, 197, 232))
    for i in range(_SIZE + 1):  # diagonal, dashed
        if (i // 6) % 2 == 0:
            x, y = to_px(i / _SIZE, i / _SIZE)
            put(x, y, (120, 120, 120))
    for i in range(_SIZE + 1):  # axes and a light grid every 0.1
        for t in range(0, 11):
            gx, gy = to_px(t / 10, i / _SIZE)
            put(gx, gy, (225, 225, 225) if 0 < t < 10 else (0, 0, 0))
            hx, hy = to_px(i / _SIZE, t / 10)
            put(hx, hy, (225, 225, 225) if 0 < t < 10 else (0, 0, 0))
        for tick in range(0, 11):
            tx, ty = to_px(tick / 10, 0.0)
            for d in range(1, 6):
                put(tx, ty + d, (0, 0, 0))
                put(_MARGIN - d, to_px(0.0, tick / 10)[1], (0, 0, 0))
    for b in bins:  # dots: mean predicted vs observed
        if b.n and b.predicted is not None and b.observed is not None:
            cx, cy = to_px(b.predicted, b.observed)
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    if dx * dx + dy * dy <= 16:
                        put(cx + dx, cy + dy, (200, 30, 30))
    return _png(img)
