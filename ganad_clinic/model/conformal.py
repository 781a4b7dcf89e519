"""The operating point: a stated false-positive rate, kept by split-conformal calibration.

Training holds out calibration normals that take no part in gradient steps or checkpoint choice
and keeps their cell scores in the bundle. A new cell's conformal p-value is
(1 + #{calibration scores >= its score}) / (n + 1); for a normal cell exchangeable with the
calibration normals, P(p <= a) <= a for every a, whatever the score's distribution. A cell is
flagged when its p-value is at most its level, i.e. when its score exceeds the
ceil((n + 1)(1 - a))-th smallest calibration score.

A slide of m cells is flagged when any of its cells is, so its false-positive rate is the chance
that the least likely of m normal cells passes. Bonferroni's correction keeps it at the target
whatever the dependence between a slide's cells: each cell is judged at level target / m, and the
slide's p-value is min(1, m * its smallest cell p-value). It asks nothing of the data but
exchangeability, needs no normal slides to calibrate on (a lab trains on cell crops), and a
person can check it with a calculator; the price is resolution: the smallest p-value is 1/(n + 1),
so a slide of m cells needs n + 1 >= m / target calibration normals, and with fewer the tool says
which rate it can keep instead (it flags at the best level the calibration resolves).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ganad_clinic.errors import GanadError
from ganad_clinic.model.config import DEFAULT_TARGET_FPR, check_target

__all__ = ["DEFAULT_TARGET_FPR", "Calibration", "CalibrationError", "OperatingPoint", "SlideDecision",
           "allowed_exceeding", "calibration_count", "check_target", "p_value_words", "percent",
           "slide_p_value_words", "split_calibration"]
CALIBRATION_FRACTION = 0.25  # of the normal images, held out to calibrate
MIN_CALIBRATION = 20  # calibration normals wanted at least, when the data allow
RULE = "split-conformal"
_EPSILON = 1e-9  # p-value comparisons are counts in disguise; this keeps float rounding out of them


class CalibrationError(GanadError, ValueError):
    """Calibration scores or a target rate that cannot make an operating point."""


def calibration_count(n_normals: int, reserved: int = 4) -> int:
    """How many of `n_normals` normal images to hold out for calibration: CALIBRATION_FRACTION of
    them, raised towards MIN_CALIBRATION as far as half of them allows (the other half trains: a
    smaller calibration costs resolution, which training and the app then say, whereas a starved
    training costs the model), never leaving fewer than `reserved`."""
    wanted = max(round(n_normals * CALIBRATION_FRACTION), min(MIN_CALIBRATION, n_normals // 2))
    return max(0, min(wanted, n_normals - reserved))


def allowed_exceeding(level: float, n: int) -> int:
    """How many of n calibration scores may reach a cell's score for its p-value to be at most
    `level` (at least 0: p-values below 1 / (n + 1) do not exist)."""
    return max(0, math.floor(level * (n + 1) + _EPSILON) - 1)


Item = TypeVar("Item")


def split_calibration(normals: Sequence[Item], seed: int = 0) -> tuple[list[Item], list[Item]]:
    """The normals left for training and validation, and the calibration normals (`calibration_count`
    of them, drawn at random with `seed`), each in the given order."""
    order = list(range(len(normals)))
    random.Random(seed).shuffle(order)
    held = set(order[:calibration_count(len(normals))])
    return ([item for index, item in enumerate(normals) if index not in held],
            [item for index, item in enumerate(normals) if index in held])


@dataclass(frozen=True)
class Calibration:
    """The calibration normals' cell scores, sorted (what a bundle keeps)."""

    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.scores:
            raise CalibrationError("calibration needs at least one normal image's score")
        values = np.asarray(self.scores, dtype=np.float64)
        if not np.isfinite(values).all():
            raise CalibrationError("calibration scores must all be finite numbers")
        object.__setattr__(self, "scores", tuple(float(value) for value in np.sort(values)))

    @classmethod
    def of(cls, scores: Sequence[float] | np.ndarray) -> Calibration:
        return cls(tuple(float(score) for score in np.asarray(scores, dtype=np.float64).ravel()))

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def lowest_rate(self) -> float:
        """The smallest p-value, hence the lowest rate this calibration can keep for one cell."""
        return 1.0 / (self.n + 1)

    def exceeding(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """For each score, how many calibration scores are at least as high."""
        values = np.asarray(self.scores)
        return self.n - np.searchsorted(values, np.asarray(scores, dtype=np.float64), side="left")

    def p_values(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        return (1.0 + self.exceeding(scores)) / (self.n + 1)

    def p_value(self, score: float) -> float:
        return float(self.p_values([score])[0])

    def allowed(self, level: float) -> int:
        """A cell is flagged at `level` when at most this many calibration scores are at or above its
        score (never fewer than none: the lowest level is `lowest_rate`)."""
        return allowed_exceeding(level, self.n)

    def threshold(self, level: float) -> float:
        """The score a cell must exceed to be flagged at `level` (levels below `lowest_rate` are
        taken at `lowest_rate`): the ceil((n + 1)(1 - level))-th smallest calibration score."""
        return self.scores[self.n - 1 - min(self.allowed(level), self.n - 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "n": self.n}


@dataclass(frozen=True)
class SlideDecision:
    """The operating point applied to one slide's cells."""

    target_fpr: float
    cell_level: float  # each cell's p-value is compared with this (Bonferroni: target / cells, or the floor)
    threshold: float  # a cell is flagged when its score exceeds this
    p_values: tuple[float, ...]  # per cell, in the given order
    flagged: tuple[bool, ...]
    p_value: float  # the slide's: min(1, cells x smallest cell p-value)
    kept_rate: float  # the slide false-positive rate this calibration keeps for this many cells

    @property
    def supported(self) -> bool:
        return self.kept_rate <= self.target_fpr + _EPSILON


@dataclass(frozen=True)
class OperatingPoint:
    """A target false-positive rate for slides, kept with a calibration."""

    target_fpr: float
    calibration: Calibration

    def __post_init__(self) -> None:
        try:
            check_target(self.target_fpr)
        except ValueError as error:
            raise CalibrationError(str(error)) from None

    def cell_level(self, cells: int = 1) -> float:
        return max(self.target_fpr / max(1, cells), self.calibration.lowest_rate)

    def kept_rate(self, cells: int = 1) -> float:
        """The slide false-positive rate promised for slides of `cells` cells (the target, or
        more when the calibration is too small to resolve target / cells)."""
        cells = max(1, cells)
        level = (self.calibration.allowed(self.cell_level(cells)) + 1) / (self.calibration.n + 1)
        return min(1.0, cells * level)

    def threshold(self, cells: int = 1) -> float:
        return self.calibration.threshold(self.cell_level(cells))

    def decide(self, scores: Sequence[float]) -> SlideDecision:
        """Judge one slide's cell scores: each cell's p-value, flag and the slide's p-value."""
        if len(scores) == 0:
            raise CalibrationError("a slide needs at least one cell to be judged")
        cells = len(scores)
        level = self.cell_level(cells)
        allowed = self.calibration.allowed(level)
        exceeding = self.calibration.exceeding(scores)
        p_values = (1.0 + exceeding) / (self.calibration.n + 1)
        return SlideDecision(
            target_fpr=self.target_fpr, cell_level=level, threshold=self.calibration.threshold(level),
            p_values=tuple(float(p) for p in p_values), flagged=tuple(bool(count <= allowed) for count in exceeding),
            p_value=min(1.0, cells * float(p_values.min())), kept_rate=self.kept_rate(cells),
        )

    def minimum_calibration(self, cells: int = 1) -> int:
        """Calibration normals needed to keep the target for slides of `cells` cells."""
        return max(1, math.ceil(max(1, cells) / self.target_fpr - _EPSILON) - 1)

    def shortfall(self, cells: int = 1) -> str | None:
        """In words, why the target cannot be kept for slides of `cells` cells; None when it can."""
        kept = self.kept_rate(cells)
        if kept <= self.target_fpr + _EPSILON:
            return None
        what = "a single cell" if cells == 1 else f"slides of {cells} cells"
        return (f"{self.calibration.n} calibration normals cannot keep a false-positive rate of "
                f"{percent(self.target_fpr)} for {what} (that needs at least "
                f"{self.minimum_calibration(cells)}); the lowest rate they support there is {percent(kept)}")


def percent(rate: float) -> str:
    """A rate as a person reads it: 5 %, 0.5 %, 12.5 %."""
    value = rate * 100
    return f"{value:.0f} %" if math.isclose(value, round(value), abs_tol=1e-9) else f"{value:.3g} %"


def p_value_words(p_value: float, n: int, what: str = "normal cells") -> str:
    """A p-value said for a technician: the share of the calibration normals the cell is more
    unusual than (rounded down, never overstated)."""
    below = max(0, round((n + 1) * (1.0 - p_value)))  # calibration scores below this score
    if below >= n:
        return f"more unusual than all {n} {what} this model was calibrated on"
    if below == 0:
        return f"no more unusual than the {what} this model was calibrated on"
    share = math.floor(100 * below / n)
    return f"more unusual than {share} % of the {n} {what} this model was calibrated on"


def slide_p_value_words(p_value: float, cell_p_values: Sequence[float], n: int) -> str:
    """A slide's p-value said for a technician. A crop's is its cell's (`p_value_words`); a slide
    of m cells has min(1, m x its smallest cell p-value), which is not a share of calibration cells:
    say its most unusual cell, then how often a normal slide of as many cells shows one so unusual."""
    if len(cell_p_values) <= 1:
        return p_value_words(p_value, n)
    return (f"its most unusual cell is {p_value_words(min(cell_p_values), n)}; a normal slide of "
            f"{len(cell_p_values)} cells shows one so unusual at most {percent(p_value)} of the time")
