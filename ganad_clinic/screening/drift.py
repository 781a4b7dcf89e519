"""The drift alarm: the service watches how often its recent slides look unusual against the
calibration normals, and says so when that is far more often than the calibration allows (a
stain, focus or scanner change, or a run of abnormal samples: both worth a look).

A slide "exceeds" when its cell's conformal p-value is at most DRIFT_LEVEL, taken at the largest
level the calibration resolves at or below it ((a + 1) / (n + 1) for n calibration normals; the
lowest, 1 / (n + 1), when none is that low). For a normal cell exchangeable with the calibration
normals this happens, given the calibration the model was trained with, at a rate that is itself
random: Beta(a + 1, n - a) (split-conformal conditional coverage). The monitor tests against the
BOUND_QUANTILE upper bound of that rate rather than the level itself, or a model with a small
calibration whose actual rate happens to lie above the level would raise false alarms forever.

The window counts slides, one p-value each: a cell drawn at random from the slide. A randomly
drawn cell of a normal slide is exchangeable with the calibration normals whatever the slide's
cell count and however its cells depend on each other, and slides are independent samples, so
the number of exceeding slides in the window is binomial under the null. Counting every cell
would treat the cells of one field, which share its stain, focus and light, as independent, and
sound false alarms on ordinary variation between slides; the slide's own p-value (Bonferroni over
its m cells) has a null rate that depends on m and on the calibration's resolution (with 30
calibration normals a field of 5 cells can never reach 0.1). Under a stain or focus change a
slide's cells move together, so its other cells add little to the one drawn. Crops are one cell.

The alarm is raised when the one-sided binomial test of the last WINDOW slides is significant at
ALARM_ALPHA (chosen so that 1,000 normal slides give no false alarm: training/drift_study.py
measures it), and clears when it is no longer significant at the looser CLEAR_ALPHA, so one
unusual slide more or less does not toggle it; a new model has another calibration, so its
monitor starts afresh (`end`). The window lives in memory: it starts empty when the service starts.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import beta, binom

from ganad_clinic.model.conformal import allowed_exceeding, percent

DRIFT_LEVEL = 0.1  # a slide exceeds when its cell is more unusual than about 90 % of the calibration normals
BOUND_QUANTILE = 0.999  # of the Beta law of the calibration's true exceedance rate
WINDOW = 200  # the most recent slides tested
ALARM_ALPHA = 1e-4  # the alarm is raised when the window's binomial test is significant at this level
CLEAR_ALPHA = 0.01  # ... and clears when it is no longer significant at this one
_EPSILON = 1e-9  # p-values are counts over n + 1: this keeps float rounding out of comparisons


@dataclass(frozen=True)
class DriftState:
    """The alarm after a change: raised or not, the exceeding slides among the `window` last
    ones, the most that normal slides exceed at (`expected_rate`), the window's binomial p-value
    and the same in words."""

    alarm: bool
    exceeding: int
    window: int
    expected_rate: float
    p_value: float
    message: str

    def to_dict(self) -> dict[str, float | int | bool | str]:
        """The figures as the audit trail keeps them."""
        return {"alarm": self.alarm, "exceeding": self.exceeding, "window": self.window,
                "expected_rate": self.expected_rate, "p_value": self.p_value, "message": self.message}

    @classmethod
    def from_dict(cls, figures: object) -> DriftState | None:
        """The state an audit event kept (`to_dict`); None when the event's details are not one."""
        if not isinstance(figures, dict):
            return None
        try:
            return cls(bool(figures["alarm"]), int(figures["exceeding"]), int(figures["window"]),
                       float(figures["expected_rate"]), float(figures["p_value"]), str(figures["message"]))
        except (KeyError, TypeError, ValueError):
            return None


class DriftMonitor:
    """The drift alarm of one model: feed it each scored slide's cell p-values (`observe`)."""

    def __init__(self, calibration_n: int, *, level: float = DRIFT_LEVEL, window: int = WINDOW,
                 alarm_alpha: float = ALARM_ALPHA, clear_alpha: float = CLEAR_ALPHA, seed: int = 0) -> None:
        if calibration_n < 1:
            raise ValueError(f"a drift monitor needs at least one calibration normal, got {calibration_n}")
        if not 0 < level < 1:
            raise ValueError(f"the drift level must lie strictly between 0 and 1, got {level}")
        if window < 1:
            raise ValueError(f"the drift window must hold at least one slide, got {window}")
        if not 0 < alarm_alpha <= clear_alpha < 1:
            raise ValueError(f"the alarm needs 0 < alarm_alpha <= clear_alpha < 1, got {alarm_alpha}, {clear_alpha}")
        self.allowed = allowed_exceeding(level, calibration_n)
        self.level = (self.allowed + 1) / (calibration_n + 1)  # the level the calibration resolves
        self.expected_rate = float(beta.ppf(BOUND_QUANTILE, self.allowed + 1, calibration_n - self.allowed))
        self.calibration_n = calibration_n
        self.alarm_alpha = alarm_alpha
        self.clear_alpha = clear_alpha
        self.alarm = False
        self.p_value = 1.0  # the window's latest test
        self._recent: deque[bool] = deque(maxlen=window)
        self._draw = random.Random(seed)

    def observe(self, p_values: Sequence[float]) -> DriftState | None:
        """Take one scored slide's cell p-values; returns the new state when the alarm changes."""
        if len(p_values) == 0:
            raise ValueError("a slide needs at least one cell p-value to be watched for drift")
        self._recent.append(self._draw.choice(list(p_values)) <= self.level + _EPSILON)
        exceeding, window = sum(self._recent), len(self._recent)
        self.p_value = p_value = float(binom.sf(exceeding - 1, window, self.expected_rate))  # P(at least this many)
        if not self.alarm and p_value < self.alarm_alpha:
            self.alarm = True
        elif self.alarm and p_value >= self.clear_alpha:
            self.alarm = False
        else:
            return None
        return DriftState(self.alarm, exceeding, window, self.expected_rate, p_value,
                          self._words(exceeding, window, p_value))

    def end(self, reason: str) -> DriftState | None:
        """This monitor's model is replaced (`reason` says by what): a cleared state when its alarm
        was raised, else None. The new model's monitor starts with an empty window."""
        if not self.alarm:
            return None
        self.alarm = False
        exceeding, window = sum(self._recent), len(self._recent)
        return DriftState(False, exceeding, window, self.expected_rate, self.p_value, f"drift alarm cleared: {reason}")

    def _words(self, exceeding: int, window: int, p_value: float) -> str:
        n = self.calibration_n
        unusual = (f"{exceeding} of the last {window} slides had a cell more unusual than {n - self.allowed} "
                   f"of the {n} normal cells this model was calibrated on, which normal slides have at most "
                   f"{percent(self.expected_rate)} of the time (binomial p = {p_value:.2g})")
        if self.alarm:
            return (f"drift alarm: {unusual}; a stain, focus or scanner change, or a run of abnormal "
                    "samples: worth a look")
        return f"drift alarm cleared: {unusual}"
