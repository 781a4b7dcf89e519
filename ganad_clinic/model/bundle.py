"""Model bundles: save, load and verify (MONAI bundle layout, weights only, sha256-checked).

    BUNDLE/configs/metadata.json   versions, architecture, λ, β, score statistics, threshold and
                                   its rule, the calibration normals' scores and the target
                                   false-positive rate, training summary, validation metrics, changelog
    BUNDLE/models/model.pt         a state dict only, loaded with weights_only=True

A bundle is written into a temporary sibling folder and renamed into place, so an interrupted save
never leaves a half-written bundle. The metadata is sealed: `ganad.seal_sha256` is the sha256 of
the rest of the metadata, which holds the weights' sha256, so the seal covers everything that
decides a score or a flag (threshold, λ, β, score form and statistics, architecture, method, crop
size, calibration scores) and the bundle's identity is that one digest. Loading checks the seal and the weights before
unpickling anything, then checks every deciding value (`bundle_checks`) before using it. The seal
is tamper evidence against an edited or damaged file, not a signature: whoever can rewrite the
file and knows the recipe can reseal it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch

from ganad_clinic import __version__
from ganad_clinic.errors import GanadError
from ganad_clinic.files import atomic_folder, file_sha256
from ganad_clinic.model.bundle_checks import (
    CheckedSettings,
    MetadataError,
    check_format,
    check_version,
    checked_settings,
)
from ganad_clinic.model.conformal import RULE, Calibration, OperatingPoint, percent
from ganad_clinic.model.device import resolve_device
from ganad_clinic.model.methods import DESCRIPTIONS, build_model, method_of
from ganad_clinic.model.networks import ArchSpec
from ganad_clinic.model.protocol import DetectionNetworks
from ganad_clinic.model.scoring import ScoreBatch, ScoreConfig, Threshold, score_batch

BUNDLE_FORMAT = 5
# Format 2 measured the paper model's all-layer terms in fitted residual units, format 3 stored their
# evidence power, format 4 seals the metadata, format 5 keeps the calibration normals' scores.
# Older bundles are refused: their settings could have been edited without a trace (before 4), or
# they cannot say which false-positive rate they keep (4).
FIRST_SEALED_FORMAT = 4
FIRST_CALIBRATED_FORMAT = 5
SEAL_KEY = "seal_sha256"
TRAINED_ON_KEY = "content_sha256"  # in ganad.training: the sha256 of each file training used, by part
METADATA = Path("configs/metadata.json")
WEIGHTS = Path("models/model.pt")


class BundleError(GanadError, ValueError):
    """A bundle that cannot be used: missing, tampered, truncated, incompatible or unsafe."""


@dataclass
class Bundle:
    """A loaded, verified bundle; `sha256` is its seal, the identity of weights and settings together.
    `threshold` is the one-cell threshold at the training's target rate (`target_fpr`); the
    operating point in force may ask for another rate (`operating_point`)."""

    path: Path
    model: DetectionNetworks
    score_config: ScoreConfig
    threshold: Threshold
    calibration: Calibration
    target_fpr: float
    metadata: dict[str, Any]
    sha256: str

    def operating_point(self, target_fpr: float | None = None) -> OperatingPoint:
        """The bundle's calibration at `target_fpr` (default: the rate it was trained for)."""
        return OperatingPoint(self.target_fpr if target_fpr is None else target_fpr, self.calibration)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def method(self) -> str:
        return method_of(self.model)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def channels(self) -> int:
        return self.model.channels

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def score(self, x: torch.Tensor) -> ScoreBatch:
        """Score a batch on the model's device; the results come back on the CPU in float32."""
        return score_batch(self.model, x.to(self.device), self.score_config).cpu()


def save_bundle(path: str | Path, model: DetectionNetworks, score_config: ScoreConfig,
                operating_point: OperatingPoint, *, version: str = "1.0.0", training: dict[str, Any] | None = None,
                validation_metrics: dict[str, Any] | None = None, changelog: str = "trained",
                parent: dict[str, Any] | None = None) -> Path:
    """Write a bundle atomically to `path` (replacing an existing one) and return its path."""
    path = Path(path)
    try:
        check_version(version)
    except MetadataError as error:
        raise BundleError(f"model bundle {path}: {error}") from None
    with atomic_folder(path) as staging:
        (staging / WEIGHTS).parent.mkdir(parents=True)
        (staging / METADATA).parent.mkdir(parents=True)
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS)
        metadata = _metadata(model, score_config, operating_point, version, training or {}, validation_metrics or {},
                             changelog, parent, file_sha256(staging / WEIGHTS))
        metadata = json.loads(json.dumps(metadata, default=_json_default))  # the form a reader will digest
        metadata["ganad"][SEAL_KEY] = metadata_digest(metadata)
        (staging / METADATA).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in bundle metadata")


def _metadata(model: DetectionNetworks, score_config: ScoreConfig, operating_point: OperatingPoint, version: str,
              training: dict[str, Any], validation_metrics: dict[str, Any], changelog: str,
              parent: dict[str, Any] | None, sha256: str) -> dict[str, Any]:
    shape = [model.channels, model.image_size, model.image_size]
    return {
        "version": version,
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "optional_packages_version": {"ganad-clinic": __version__},
        "task": "Unsupervised anomaly detection in blood-smear cell images",
        "description": DESCRIPTIONS[method_of(model)],
        "authors": "GANAD Clinic",
        "copyright": "Trained locally; see the training section",
        "intended_use": "A screening aid that flags slides for review by a qualified person; not a diagnosis.",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "microscopy",
                                 "num_channels": model.channels, "spatial_shape": shape[1:],
                                 "dtype": "float32", "value_range": [-1, 1], "is_patch_data": False,
                                 "channel_def": ({"0": "R", "1": "G", "2": "B"} if model.channels == 3
                                                 else {"0": "gray"})}},
            "outputs": {"score": {"type": "probabilities", "format": "anomaly score", "num_channels": 1,
                                  "spatial_shape": [1], "dtype": "float32", "value_range": [],
                                  "is_patch_data": False, "channel_def": {"0": "A(x)"}}},
        },
        "changelog": {version: changelog},
        "ganad": {
            "bundle_format": BUNDLE_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_sha256": sha256,
            "architecture": {"method": method_of(model), "spec": model.spec.to_dict(),
                             "image_size": model.image_size, "channels": model.channels, "latent": model.latent,
                             "options": model.options()},
            "score": {"lambda": score_config.lam, "beta": score_config.beta, "mode": score_config.mode,
                      "feature_layers": score_config.feature_layers,
                      "term_stats": {k: list(v) for k, v in score_config.term_stats.items()},
                      "pixel_reference": score_config.pixel_reference},
            "threshold": {"value": operating_point.threshold(), "rule": threshold_rule(operating_point)},
            "calibration": {**operating_point.calibration.to_dict(), "target_fpr": operating_point.target_fpr,
                            "rule": RULE, "shortfall": operating_point.shortfall()},
            "training": training,
            "validation_metrics": validation_metrics,
            "parent": parent,
        },
    }


def trained_on(train: Sequence[Path], validation: Sequence[Path],
               calibration: Sequence[Path]) -> dict[str, dict[str, list[str]]]:
    """The sha256 of every file a training used, by part, for its bundle's training section: an
    acceptance check leaves them out of the evidence it judges the model on."""
    parts = {"train": train, "validation": validation, "calibration": calibration}
    return {TRAINED_ON_KEY: {name: [file_sha256(path) for path in paths] for name, paths in parts.items()}}


def used_in_training(metadata: dict[str, Any]) -> set[str]:
    """The content sha256 of every file a bundle's training used (none recorded: an empty set)."""
    recorded = (metadata.get("ganad", {}).get("training") or {}).get(TRAINED_ON_KEY) or {}
    return {digest for digests in recorded.values() if isinstance(digests, list) for digest in digests
            if isinstance(digest, str)}


def threshold_rule(operating_point: OperatingPoint, *, with_shortfall: bool = True) -> str:
    """How a bundle's one-cell threshold was set, in words, with the calibration's shortfall if any
    (`with_shortfall=False`: for a caller that warns of it separately)."""
    n = operating_point.calibration.n
    rank = n - operating_point.calibration.allowed(operating_point.cell_level())
    rule = (f"split-conformal: the {_ordinal(rank)} smallest of {n} calibration-normal scores, for a "
            f"false-positive rate of at most {percent(operating_point.kept_rate())}")
    shortfall = operating_point.shortfall() if with_shortfall else None
    return rule if shortfall is None else f"{rule}; {shortfall}"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def metadata_digest(metadata: dict[str, Any]) -> str:
    """sha256 of the metadata without its seal, serialised canonically (sorted keys, no spaces)."""
    unsealed = dict(metadata)
    unsealed["ganad"] = {key: value for key, value in metadata["ganad"].items() if key != SEAL_KEY}
    text = json.dumps(unsealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The bundle's metadata, checked for shape but neither sealed nor range-checked: for display
    only; everything that scores goes through `load_bundle`."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"model bundle {path}: not found (expected a folder with {METADATA} and {WEIGHTS})")
    try:
        metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"model bundle {path}: {METADATA} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"model bundle {path}: {METADATA} is not valid JSON ({error})") from None
    ganad = metadata.get("ganad") if isinstance(metadata, dict) else None
    if not isinstance(ganad, dict) or "bundle_format" not in ganad:
        raise BundleError(f"model bundle {path}: {METADATA} is not a GANAD Clinic bundle")
    try:
        check_format(ganad["bundle_format"])
    except MetadataError as error:
        raise BundleError(f"model bundle {path}: {error}") from None
    if ganad["bundle_format"] > BUNDLE_FORMAT:
        raise BundleError(f"model bundle {path}: made by a newer GANAD Clinic (bundle format "
                          f"{ganad['bundle_format']}, this version reads {BUNDLE_FORMAT}); upgrade the application")
    return metadata


def load_bundle(path: str | os.PathLike[str], device: str = "cpu") -> Bundle:
    """Load and verify a bundle onto `device` ("auto": a CUDA GPU when there is one); any problem
    raises BundleError naming the bundle and the reason."""
    path = Path(path)
    metadata = read_metadata(path)
    ganad = metadata["ganad"]
    if ganad["bundle_format"] < FIRST_SEALED_FORMAT:
        raise BundleError(f"model bundle {path}: made by an older GANAD Clinic "
                          f"(bundle format {ganad['bundle_format']}), "
                          "whose settings are not sealed against editing and whose score this version may compute "
                          "differently; train a new model on your normal images "
                          "(ganad train --data FOLDER --out BUNDLE, then "
                          "ganad models import BUNDLE)")
    if ganad["bundle_format"] < FIRST_CALIBRATED_FORMAT:
        raise BundleError(f"model bundle {path}: made by an older GANAD Clinic (bundle format "
                          f"{ganad['bundle_format']}) that kept no calibration normals, so it cannot say which "
                          "false-positive rate it keeps; train a new model on your normal images "
                          "(ganad train --data FOLDER --out BUNDLE, then ganad models import BUNDLE)")
    seal = ganad.get(SEAL_KEY)
    if seal != metadata_digest(metadata):
        raise BundleError(f"model bundle {path}: {METADATA} was changed after the bundle was made (its seal does "
                          "not match: edited, tampered or corrupted); refusing to load it")
    weights = path / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"model bundle {path}: {WEIGHTS} is missing")
    if file_sha256(weights) != ganad.get("model_sha256"):
        raise BundleError(f"model bundle {path}: {WEIGHTS} does not match the sha256 in its metadata "
                          "(tampered, truncated or corrupted); refusing to load it")
    try:
        check_version(metadata.get("version"))
        settings = checked_settings(ganad)
    except MetadataError as error:
        raise BundleError(f"model bundle {path}: {METADATA}: {error}") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise BundleError(f"model bundle {path}: {WEIGHTS} is not a plain weights file ({error})") from None
    try:
        _check_shapes(settings, state)
        model = build_model(settings.method, settings.spec, settings.image_size, settings.channels,
                            settings.latent, settings.options)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise BundleError(f"model bundle {path}: incompatible with this version of GANAD Clinic ({error})") from None
    try:
        target = resolve_device(device)
    except ValueError as error:
        raise BundleError(f"model bundle {path}: {error}") from None
    return Bundle(path, model.eval().to(target), settings.score_config, settings.threshold, settings.calibration,
                  settings.target_fpr, metadata, seal)


def _check_shapes(settings: CheckedSettings, state: dict[str, torch.Tensor]) -> None:
    """Compare the networks the metadata describes with the weights before allocating them, so a
    description of a huge network is refused plainly instead of exhausting the computer's memory."""
    described = _described_shapes(settings.method, settings.spec, settings.image_size, settings.channels,
                                  settings.latent, json.dumps(settings.options, sort_keys=True))
    for key, shape in described.items():
        if key in state and tuple(state[key].shape) != shape:
            raise ValueError(f"the metadata describes {key} as {shape}, the weights hold {tuple(state[key].shape)}")


@functools.lru_cache(maxsize=16)
def _described_shapes(method: str, spec: ArchSpec, image_size: int, channels: int, latent: int,
                      options: str) -> dict[str, tuple[int, ...]]:
    """The weights' shapes of a described network, built on the meta device (no memory). Kept per
    description: the meta build runs spectral norm's power iterations through torch's Python
    reference kernels, about 0.8 s, for every load of a model otherwise."""
    with torch.device("meta"):
        model = build_model(method, spec, image_size, channels, latent, json.loads(options))
    return {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
