"""Model bundles: save, load and verify (MONAI bundle layout, weights only, sha256-checked).

    BUNDLE/configs/metadata.json   versions, architecture, λ, β, score statistics, threshold and
                                   its rule, training summary, validation metrics, changelog
    BUNDLE/models/model.pt         a state dict only, loaded with weights_only=True

A bundle is written into a temporary sibling folder and renamed into place, so an interrupted save
never leaves a half-written bundle. Loading checks the sha256 before unpickling anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch

from ganad_clinic import __version__
from ganad_clinic.model.baselines.common import BaselineModel
from ganad_clinic.model.device import resolve_device
from ganad_clinic.model.methods import DESCRIPTIONS, build_model, method_of
from ganad_clinic.model.networks import DEFAULT_EVIDENCE_POWER, ArchSpec, GanAutoencoder
from ganad_clinic.model.scoring import ScoreBatch, ScoreConfig, Threshold, score_batch

BUNDLE_FORMAT = 3
# Format 2 measures the paper model's all-layer score terms in fitted residual units (`residual_units`);
# a format-1 bundle of that model lacks them and must be retrained. Format 3 stores the units' evidence
# power, which format 2 fixed at the default. Baseline bundles are unchanged.
FIRST_FORMAT_OF = {"ganad": 2}
POWER_KEY = "residual_units.evidence_power"
METADATA = Path("configs/metadata.json")
WEIGHTS = Path("models/model.pt")


class BundleError(ValueError):
    """A bundle that cannot be used: missing, tampered, truncated, incompatible or unsafe."""


@dataclass
class Bundle:
    path: Path
    model: GanAutoencoder | BaselineModel
    score_config: ScoreConfig
    threshold: Threshold
    metadata: dict[str, Any]
    sha256: str

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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_bundle(path: str | Path, model: GanAutoencoder | BaselineModel, score_config: ScoreConfig, threshold: Threshold,
                *, version: str = "1.0.0", training: dict[str, Any] | None = None,
                validation_metrics: dict[str, Any] | None = None, changelog: str = "trained",
                parent: dict[str, Any] | None = None) -> Path:
    """Write a bundle atomically to `path` (replacing an existing one) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        (staging / WEIGHTS).parent.mkdir(parents=True)
        (staging / METADATA).parent.mkdir(parents=True)
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS)
        metadata = _metadata(model, score_config, threshold, version, training or {}, validation_metrics or {},
                             changelog, parent, file_sha256(staging / WEIGHTS))
        (staging / METADATA).write_text(json.dumps(metadata, indent=2, default=_json_default), encoding="utf-8")
        for file in (staging / WEIGHTS, staging / METADATA):
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if path.exists():
            retired = path.with_name(f".{path.name}.retired")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in bundle metadata")


def _metadata(model: GanAutoencoder | BaselineModel, score_config: ScoreConfig, threshold: Threshold, version: str,
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
                                 "channel_def": {"0": "R", "1": "G", "2": "B"} if model.channels == 3 else {"0": "gray"}}},
            "outputs": {"score": {"type": "probabilities", "format": "anomaly score", "num_channels": 1,
                                  "spatial_shape": [1], "dtype": "float32", "value_range": [],
                                  "is_patch_data": False, "channel_def": {"0": "A(x)"}}},
        },
        "changelog": {version: changelog},
        "ganad": {
            "bundle_format": BUNDLE_FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model_sha256": sha256,
            "architecture": {"method": method_of(model), "spec": model.spec.to_dict(),
                             "image_size": model.image_size, "channels": model.channels, "latent": model.latent,
                             "options": model.options() if isinstance(model, BaselineModel) else {}},
            "score": {"lambda": score_config.lam, "beta": score_config.beta, "mode": score_config.mode,
                      "feature_layers": score_config.feature_layers,
                      "term_stats": {k: list(v) for k, v in score_config.term_stats.items()},
                      "pixel_reference": score_config.pixel_reference},
            "threshold": {"value": threshold.value, "rule": threshold.rule},
            "training": training,
            "validation_metrics": validation_metrics,
            "parent": parent,
        },
    }


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The bundle's metadata, checked for shape but without touching the weights."""
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
    if ganad["bundle_format"] > BUNDLE_FORMAT:
        raise BundleError(f"model bundle {path}: made by a newer GANAD Clinic (bundle format "
                          f"{ganad['bundle_format']}, this version reads {BUNDLE_FORMAT}); upgrade the application")
    return metadata


def load_bundle(path: str | Path, device: str = "cpu") -> Bundle:
    """Load and verify a bundle onto `device` ("auto": a CUDA GPU when there is one); any problem
    raises BundleError naming the bundle and the reason."""
    path = Path(path)
    metadata = read_metadata(path)
    ganad = metadata["ganad"]
    weights = path / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"model bundle {path}: {WEIGHTS} is missing")
    sha256 = file_sha256(weights)
    if sha256 != ganad.get("model_sha256"):
        raise BundleError(f"model bundle {path}: {WEIGHTS} does not match the sha256 in its metadata "
                          "(tampered, truncated or corrupted); refusing to load it")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise BundleError(f"model bundle {path}: {WEIGHTS} is not a plain weights file ({error})") from None
    architecture = ganad.get("architecture")
    method = architecture.get("method", "ganad") if isinstance(architecture, dict) else "ganad"
    if ganad["bundle_format"] < FIRST_FORMAT_OF.get(method, 1):
        raise BundleError(f"model bundle {path}: made by an older GANAD Clinic (bundle format {ganad['bundle_format']}), "
                          "whose score this version computes differently; retrain the model (ganad train, or Retrain in the app)")
    try:
        arch = ganad["architecture"]
        model = build_model(method, ArchSpec.from_dict(arch["spec"]), int(arch["image_size"]),
                            int(arch["channels"]), int(arch["latent"]), arch.get("options"))
        if ganad["bundle_format"] == 2 and method == "ganad":
            state.setdefault(POWER_KEY, torch.tensor(float(DEFAULT_EVIDENCE_POWER)))
        model.load_state_dict(state, strict=True)
        score = ganad["score"]
        score_config = ScoreConfig(float(score["lambda"]), float(score["beta"]), score["mode"],
                                   score["feature_layers"], {k: (float(v[0]), float(v[1])) for k, v in score["term_stats"].items()},
                                   float(score["pixel_reference"]))
        threshold = Threshold(float(ganad["threshold"]["value"]), str(ganad["threshold"]["rule"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise BundleError(f"model bundle {path}: incompatible with this version of GANAD Clinic ({error})") from None
    try:
        target = resolve_device(device)
    except ValueError as error:
        raise BundleError(f"model bundle {path}: {error}") from None
    return Bundle(path, model.eval().to(target), score_config, threshold, metadata, sha256)
