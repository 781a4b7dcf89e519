"""What a bundle's metadata may say: every value that decides a score or a flag, checked before use.

The bundle's seal (see `bundle.metadata_digest`) proves that the metadata is what training wrote;
these checks make sure it can be used at all: finite numbers in their ranges, known names, networks
a workstation can build, and a version that is safe as a folder name. Each failure names the key
and the value, so a person can see what is wrong with the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ganad_clinic.errors import GanadError
from ganad_clinic.model.conformal import Calibration, OperatingPoint
from ganad_clinic.model.methods import METHODS
from ganad_clinic.model.networks import ArchSpec
from ganad_clinic.model.scoring import FEATURE_LAYERS, SCORE_MODES, TERMS, ScoreConfig, Threshold

VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,30}")
"""A bundle version: a letter or digit, then at most 30 of letters, digits and `. _ + -`. It names a
folder under <home>/models and the registry adds `+<sha256 prefix>` (at most 33 characters) to it
within the registry's 64, so it can neither climb out of that folder (`..`) nor overflow it."""

MAX_LAYERS = 16
MAX_WIDTH = 4096
MAX_IMAGE_SIZE = 1024
MAX_LATENT = 4096
MAX_SEARCH_STEPS = 10_000
MAX_CROP_SIZE = 10_000
MAX_CALIBRATION = 1_000_000
ANOGAN_OPTIONS = ("search_steps", "search_lr", "search_lambda")


class MetadataError(GanadError, ValueError):
    """A value in a bundle's metadata that cannot be used; the message names the key."""


@dataclass(frozen=True)
class CheckedSettings:
    """The settings of a bundle that decide its scores and flags, each checked."""

    method: str
    spec: ArchSpec
    image_size: int
    channels: int
    latent: int
    options: dict[str, Any]
    score_config: ScoreConfig
    threshold: Threshold
    calibration: Calibration
    target_fpr: float


def check_version(value: Any) -> str:
    if not isinstance(value, str) or not VERSION_PATTERN.fullmatch(value):
        raise MetadataError(f"version {_shown(value)} is not a valid bundle version (a letter or digit, then at most "
                            "30 letters, digits or . _ + -)")
    return value


def check_format(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MetadataError(f"ganad.bundle_format {_shown(value)} is not a format number (a whole number, 1 or more)")
    return value


def checked_settings(ganad: dict[str, Any]) -> CheckedSettings:
    """The scoring settings of a bundle's `ganad` section; MetadataError names the first bad value."""
    architecture = _section(ganad, "architecture")
    method = architecture.get("method", "ganad")
    if method not in METHODS:
        raise MetadataError(f"ganad.architecture.method {_shown(method)} is not one of {', '.join(METHODS)}")
    score = _section(ganad, "score")
    threshold = _section(ganad, "threshold")
    training = ganad.get("training") or {}
    if not isinstance(training, dict):
        raise MetadataError("ganad.training is not a JSON object")
    if "crop_size" in training and training["crop_size"] is not None:
        _integer(training, "crop_size", "ganad.training", 8, MAX_CROP_SIZE)
    rule = threshold.get("rule")
    if not isinstance(rule, str):
        raise MetadataError(f"ganad.threshold.rule {_shown(rule)} is not a text")
    calibration, target_fpr = _calibration(_section(ganad, "calibration"))
    value = _number(threshold, "value", "ganad.threshold")
    kept = OperatingPoint(target_fpr, calibration).threshold()
    if value != kept:  # the shown one-cell threshold must be the one the calibration flags by
        raise MetadataError(f"ganad.threshold.value {_shown(value)} is not the calibration's threshold {kept!r} "
                            f"at ganad.calibration.target_fpr {target_fpr!r}")
    return CheckedSettings(
        method=method,
        spec=_spec(_section(architecture, "spec", "ganad.architecture")),
        image_size=_integer(architecture, "image_size", "ganad.architecture", 8, MAX_IMAGE_SIZE),
        channels=_channels(architecture),
        latent=_integer(architecture, "latent", "ganad.architecture", 1, MAX_LATENT),
        options=_options(method, architecture.get("options") or {}),
        score_config=_score_config(score),
        threshold=Threshold(value, rule),
        calibration=calibration,
        target_fpr=target_fpr,
    )


def _calibration(section: dict[str, Any]) -> tuple[Calibration, float]:
    where = "ganad.calibration"
    scores = section.get("scores")
    if not isinstance(scores, list) or not 1 <= len(scores) <= MAX_CALIBRATION:
        raise MetadataError(f"{where}.scores is not a list of 1 to {MAX_CALIBRATION} scores")
    values = [_number(dict(enumerate(scores)), index, f"{where}.scores") for index in range(len(scores))]
    if values != sorted(values):
        raise MetadataError(f"{where}.scores are not in ascending order")
    if section.get("n") != len(values):
        raise MetadataError(f"{where}.n {_shown(section.get('n'))} is not the number of scores ({len(values)})")
    target = _number(section, "target_fpr", where, 0.0, 1.0, above_low=True)
    if target == 1.0:
        raise MetadataError(f"{where}.target_fpr 1.0 is not a rate below 1")
    return Calibration.of(values), target


def _score_config(score: dict[str, Any]) -> ScoreConfig:
    where = "ganad.score"
    mode, layers = score.get("mode"), score.get("feature_layers")
    if mode not in SCORE_MODES:
        raise MetadataError(f"{where}.mode {_shown(mode)} is not one of {', '.join(SCORE_MODES)}")
    if layers not in FEATURE_LAYERS:
        raise MetadataError(f"{where}.feature_layers {_shown(layers)} is not one of {', '.join(FEATURE_LAYERS)}")
    stats = _section(score, "term_stats", where)
    term_stats: dict[str, tuple[float, float]] = {}
    for name, pair in stats.items():
        if name not in TERMS:
            raise MetadataError(f"{where}.term_stats has an unknown term {_shown(name)}")
        if not isinstance(pair, list) or len(pair) != 2:
            raise MetadataError(f"{where}.term_stats.{name} {_shown(pair)} is not a [mean, spread] pair")
        values = {"mean": pair[0], "spread": pair[1]}
        term_stats[name] = (_number(values, "mean", f"{where}.term_stats.{name}"),
                            _number(values, "spread", f"{where}.term_stats.{name}", 0.0, math.inf, above_low=True))
    if mode == "normalised" and set(term_stats) != set(TERMS):
        raise MetadataError(f"{where}.term_stats needs {', '.join(TERMS)} for the normalised score")
    return ScoreConfig(
        lam=_number(score, "lambda", where, 0.0, 1.0),
        beta=_number(score, "beta", where, 0.0, math.inf),
        mode=mode,
        feature_layers=layers,
        term_stats=term_stats,
        pixel_reference=_number(score, "pixel_reference", where, 0.0, math.inf, above_low=True),
    )


def _spec(spec: dict[str, Any]) -> ArchSpec:
    where = "ganad.architecture.spec"
    if not isinstance(spec.get("name"), str):
        raise MetadataError(f"{where}.name {_shown(spec.get('name'))} is not a text")
    for key in ("i", "j", "k", "l", "m", "p", "q"):
        _integer(spec, key, where, 0, MAX_LAYERS)
    for key in ("encoder_widths", "critic_widths", "generator_widths"):
        widths = spec.get(key)
        if not isinstance(widths, list) or len(widths) > MAX_LAYERS:
            raise MetadataError(f"{where}.{key} {_shown(widths)} is not a list of at most {MAX_LAYERS} widths")
        for index in range(len(widths)):
            _integer(dict(enumerate(widths)), index, f"{where}.{key}", 1, MAX_WIDTH)
    _integer(spec, "hidden_linear", where, 1, 4 * MAX_WIDTH)
    try:
        return ArchSpec.from_dict(spec)
    except TypeError as error:
        raise MetadataError(f"{where} does not describe a network of this version ({error})") from None


def _channels(architecture: dict[str, Any]) -> int:
    channels = architecture.get("channels")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise MetadataError(f"ganad.architecture.channels {_shown(channels)} is not 1 or 3")
    return channels


def _options(method: str, options: Any) -> dict[str, Any]:
    where = "ganad.architecture.options"
    if not isinstance(options, dict):
        raise MetadataError(f"{where} is not a JSON object")
    allowed = ANOGAN_OPTIONS if method == "anogan" else ()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise MetadataError(f"{where} has settings the {method} method does not take: {', '.join(unknown)}")
    if "search_steps" in options:
        _integer(options, "search_steps", where, 1, MAX_SEARCH_STEPS)
    if "search_lr" in options:
        _number(options, "search_lr", where, 0.0, 10.0, above_low=True)
    if "search_lambda" in options:
        _number(options, "search_lambda", where, 0.0, 1.0)
    return dict(options)


def _section(parent: dict[str, Any], key: str, where: str = "ganad") -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise MetadataError(f"{where}.{key} is missing or not a JSON object")
    return value


def _number(parent: dict[Any, Any], key: Any, where: str, low: float = -math.inf, high: float = math.inf,
            *, above_low: bool = False) -> float:
    """A finite number in [low, high] (or (low, high] with `above_low`)."""
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetadataError(f"{where}.{key} {_shown(value)} is not a finite number")
    if value < low or value > high or (above_low and value == low):
        bounds = f"{'(' if above_low else '['}{low:g}, {high:g}]"
        raise MetadataError(f"{where}.{key} {_shown(value)} lies outside {bounds}")
    return float(value)


def _integer(parent: dict[Any, Any], key: Any, where: str, low: int, high: int) -> int:
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MetadataError(f"{where}.{key} {_shown(value)} is not a whole number from {low} to {high}")
    return value


def _shown(value: Any) -> str:
    """A value as a person reads it in a message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
