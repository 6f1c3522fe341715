"""The small curve picture a model card shows: ``adapters/<name>/history.png``, drawn from ``history.jsonl``.

Drawn with Pillow, not matplotlib: every training job writes one, and matplotlib's
import alone takes seconds (``alice report`` draws the full figures with matplotlib,
:mod:`alice.report.figures`). The last job of the history is drawn: on the left
each loss term divided by its first value (log scale, so terms of any size share
the axis), on the right the headline validation figure. The same history always
gives the same bytes.
"""

from __future__ import annotations

import io
import math
from typing import Any

from alice.artifacts.format.history import Job, decode
from alice.artifacts.format.layout import CURVE_FILE, HISTORY_FILE

WIDTH, HEIGHT, PAD = 560, 220, 34
#: line colours (matplotlib's first six, so the card and the report agree)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _panel(draw: Any, font: Any, box: tuple[int, int, int, int], title: str, lines: list, log: bool) -> None:
    """Axes in ``box`` (left, top, right, bottom) with ``lines`` [(label, steps, values)] drawn in them."""
    left, top, right, bottom = box
    draw.rectangle(box, outline="#888888")
    draw.text((left, top - 16), title, fill="#222222", font=font)
    shown = [(label, s, [math.log10(v) if log else v for v in vs]) for label, s, vs in lines if s]
    shown = [(label, s, vs) for label, s, vs in shown if all(math.isfinite(v) for v in vs)]
    if not shown:
        draw.text((left + 8, top + 8), "not recorded", fill="#888888", font=font)
        return
    xs = [x for _, s, _ in shown for x in s]
    ys = [y for _, _, v in shown for y in v]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    span_x = max(x1 - x0, 1)

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + 4 + (x - x0) / span_x * (right - left - 8),
            bottom - 4 - (y - y0) / (y1 - y0) * (bottom - top - 8),
        )

    for i, (label, s, vs) in enumerate(shown):
        colour = COLOURS[i % len(COLOURS)]
        points = [at(x, y) for x, y in zip(s, vs)]
        if len(points) == 1:  # one validation at the end: a dot
            (x, y), r = points[0], 3
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.line(points, fill=colour, width=2)
        draw.text((left + 6, top + 4 + 13 * i), label, fill=colour, font=font)
    low, high = (f"{10**y0:.3g}", f"{10**y1:.3g}") if log else (f"{y0:.3g}", f"{y1:.3g}")
    draw.text((right + 3, top), high, fill="#555555", font=font)
    draw.text((right + 3, bottom - 12), low, fill="#555555", font=font)
    draw.text((left, bottom + 3), f"step {x0:,}", fill="#555555", font=font)
    end = f"{x1:,}"
    draw.text((right - 7 * len(end), bottom + 3), end, fill="#555555", font=font)


def curve_png(job: Job) -> bytes:
    """The picture of one job: loss terms (relative to their first point) and its headline validation figure."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    losses = []
    for key in job.keys(validation=False):
        steps, values = job.series(key)
        if values and values[0] and all(v > 0 for v in values):
            losses.append((key, steps, [v / values[0] for v in values]))
    half = WIDTH // 2
    _panel(draw, font, (PAD // 2, PAD, half - PAD, HEIGHT - PAD), f"{job.title}: train losses / first", losses, True)
    headline = job.headline()
    val = [(headline, *job.series(headline))] if headline else []
    _panel(draw, font, (half + PAD // 2, PAD, WIDTH - PAD - 12, HEIGHT - PAD), f"validation: {headline}", val, False)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def curve_files(files: dict[str, Any]) -> dict[str, bytes]:
    """``history.png`` beside each ``history.jsonl`` among an artifact's ``files`` (relative path -> bytes).

    Documentation: a history it cannot draw never stops the artifact from being written (no picture then).
    """
    out: dict[str, bytes] = {}
    for rel, content in files.items():
        if rel.rsplit("/", 1)[-1] == HISTORY_FILE and isinstance(content, bytes):
            jobs = decode(content, rel)
            if jobs and jobs[-1].points:
                out[rel[: -len(HISTORY_FILE)] + CURVE_FILE] = curve_png(jobs[-1])
    return out
