"""Vector charts for reports (reportlab graphics): the score histogram and the heat-map legend."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors

from ganad_clinic.imaging.overlay import heat_rgba
from ganad_clinic.model.numbers import score_text
from ganad_clinic.model.scoring import heat_of_ratio

BINS = 30
BELOW_COLOUR = colors.HexColor("#7f9cbf")
ABOVE_COLOUR = colors.HexColor("#d1495b")
THRESHOLD_COLOUR = colors.HexColor("#8b0000")
AXIS_COLOUR = colors.HexColor("#444444")
LEGEND_STEPS = 64
MAX_THRESHOLD_LINES = 4


def score_histogram(
    scores: Sequence[float], thresholds: Sequence[float], width: float, height: float, font: str
) -> Drawing:
    """Counts of scores in equal bins, bars above the lowest threshold in red, and a dashed line at
    each threshold in force."""
    drawing = Drawing(width, height)
    left, bottom, right, top = 34.0, 26.0, width - 8.0, height - 18.0
    if not scores:
        drawing.add(String(width / 2, height / 2, "No scores in this period", fontName=font, fontSize=9,
                           textAnchor="middle", fillColor=AXIS_COLOUR))
        return drawing
    lines = sorted(set(thresholds))[:MAX_THRESHOLD_LINES]
    edges = _bin_edges(*_value_range([*scores, *lines]), lines[0] if lines else None)
    low, high = float(edges[0]), float(edges[-1])
    counts, _ = np.histogram(np.asarray(scores, dtype=np.float64), bins=edges)
    tallest = _nice_ceiling(int(counts.max()))

    def x_of(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    def y_of(value: float) -> float:
        return bottom + value / tallest * (top - bottom)

    cut = lines[0] if lines else math.inf
    for index, number in enumerate(counts):
        if number:
            x0, x1 = x_of(edges[index]), x_of(edges[index + 1])
            fill = ABOVE_COLOUR if edges[index] >= cut else BELOW_COLOUR
            drawing.add(Rect(x0, bottom, max(x1 - x0 - 0.6, 0.4), y_of(number) - bottom,
                             fillColor=fill, strokeColor=None))
    _add_axes(drawing, left, bottom, right, top, low, high, tallest, font, x_of, y_of)
    for position, threshold in enumerate(lines):
        x = x_of(threshold)
        drawing.add(Line(x, bottom, x, top + 4, strokeColor=THRESHOLD_COLOUR, strokeWidth=1.2,
                         strokeDashArray=[3, 2]))
        label = f"threshold {score_text(threshold)}"
        anchor = "end" if x > (left + right) / 2 else "start"
        drawing.add(String(x + (-3 if anchor == "end" else 3), top + 6 - 9 * position, label, fontName=font,
                           fontSize=7.5, textAnchor=anchor, fillColor=THRESHOLD_COLOUR))
    return drawing


def heat_legend(width: float, font: str) -> Drawing:
    """The model-anchored scale of the heat layer (model.scoring.heat_of_ratio) as it is drawn over
    white, with what its marks mean: how many times what normal cells show."""
    bar_height, label_height = 9.0, 22.0
    drawing = Drawing(width, bar_height + label_height)
    span = heat_of_ratio(1.5)
    layer = heat_rgba(np.linspace(0.0, span, LEGEND_STEPS)[None, :])[0].astype(np.float64) / 255
    step = width / LEGEND_STEPS
    y = label_height
    for index, (red, green, blue, opacity) in enumerate(layer):
        drawing.add(Rect(index * step, y, step + 0.3, bar_height, strokeColor=None,
                         fillColor=colors.Color(*(1 - opacity * (1 - channel) for channel in (red, green, blue)))))
    drawing.add(Rect(0, y, width, bar_height, fillColor=None, strokeColor=AXIS_COLOUR, strokeWidth=0.4))
    marks = (
        (1.0, "as in normal cells: nothing drawn", "start"),
        (1.1, "1.1×", "middle"),
        (1.25, "1.25×: drawn fully", "middle"),
        (1.5, "1.5× and more", "end"),
    )
    for ratio, text, anchor in marks:
        x = heat_of_ratio(ratio) / span * width
        drawing.add(Line(x, y - 3, x, y, strokeColor=AXIS_COLOUR, strokeWidth=0.5))
        drawing.add(String(x, y - 11, text, fontName=font, fontSize=6.5, textAnchor=anchor, fillColor=AXIS_COLOUR))
    return drawing


def _add_axes(drawing: Drawing, left: float, bottom: float, right: float, top: float, low: float, high: float,
              tallest: int, font: str, x_of: Callable[[float], float], y_of: Callable[[float], float]) -> None:
    drawing.add(Line(left, bottom, right, bottom, strokeColor=AXIS_COLOUR, strokeWidth=0.6))
    drawing.add(Line(left, bottom, left, top, strokeColor=AXIS_COLOUR, strokeWidth=0.6))
    for value in _ticks(low, high):
        x = x_of(value)
        drawing.add(Line(x, bottom - 3, x, bottom, strokeColor=AXIS_COLOUR, strokeWidth=0.5))
        drawing.add(String(x, bottom - 11, f"{value:.4g}", fontName=font, fontSize=7, textAnchor="middle",
                           fillColor=AXIS_COLOUR))
    for value in (0, tallest // 2, tallest):
        y = y_of(value)
        drawing.add(Line(left - 3, y, left, y, strokeColor=AXIS_COLOUR, strokeWidth=0.5))
        drawing.add(String(left - 5, y - 2.5, str(value), fontName=font, fontSize=7, textAnchor="end",
                           fillColor=AXIS_COLOUR))
    drawing.add(String((left + right) / 2, 2, "anomaly score", fontName=font, fontSize=7.5, textAnchor="middle",
                       fillColor=AXIS_COLOUR))
    drawing.add(String(left - 5, top + 6, "slides", fontName=font, fontSize=7.5, textAnchor="end",
                       fillColor=AXIS_COLOUR))


def _value_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        span = abs(low) or 1.0
        return low - span / 2, high + span / 2
    return low - span * 0.03, high + span * 0.03


def _bin_edges(low: float, high: float, threshold: float | None) -> np.ndarray:
    """About BINS equal bins over [low, high], one edge on the threshold so no bar straddles it."""
    width = (high - low) / BINS
    anchor = low if threshold is None else threshold
    first, last = math.floor((low - anchor) / width), math.ceil((high - anchor) / width)
    return anchor + width * np.arange(first, last + 1)


def _nice_ceiling(value: int) -> int:
    """An even number at or above `value`, so the half-way tick is a whole number."""
    return max(2, value + value % 2)


def _ticks(low: float, high: float) -> list[float]:
    """About five round tick values within [low, high]."""
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
