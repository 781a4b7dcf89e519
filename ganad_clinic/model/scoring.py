"""The anomaly score A(x) of Eq. 4-7, residual heat maps, thresholds and screening metrics.

A(x) = λ·L_D(x) + (1-λ)·L_R(x) + β·L_L(x), with
  L_D = Σ|f_D(x) - f_D(G(E(x)))|   (critic features),
  L_R = Σ|x - G(E(x))|             (pixels),
  L_L = Σ|E(x) - E(G(E(x)))|       (latent).
The three sums live on very different scales (thousands of pixels against a few hundred features),
so besides the paper's raw form we offer a normalised one: each term becomes a z-score against the
training normals' scores, which makes λ and β mean what they say. The default ("all" layers) also
measures every residual in units of its spread on the training normals and summarises each layer
by a soft maximum rather than a sum (`ganad.terms.raw_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import compute_roc_auc

from ganad_clinic.model.config import FEATURE_LAYERS, SCORE_MODES, TERMS, ScoreConfig  # noqa: F401 (declared in config, offered here)
from ganad_clinic.model.protocol import DetectionNetworks

HEAT_QUANTILE = 0.99  # the pixel reference: heat 0 up to the top 1 % of validation-normal pixels' residual
HEAT_TAPER = 1 / 8  # the outer fraction of each side of the model's view over which heat fades to 0


@dataclass
class ScoreBatch:
    """Scores of a batch: the combined score, its three raw terms and the residual maps."""

    score: torch.Tensor
    l_d: torch.Tensor
    l_r: torch.Tensor
    l_l: torch.Tensor
    residual: torch.Tensor  # N x H x W, mean absolute pixel residual (smoothed)
    reconstruction: torch.Tensor  # N x C x H x W in [-1, 1]

    def cpu(self) -> ScoreBatch:
        """The same batch on the CPU in float32 (a no-op there)."""
        return ScoreBatch(**{f.name: getattr(self, f.name).float().cpu() for f in fields(self)})

    def heat(self, config: ScoreConfig) -> torch.Tensor:
        """N x H x W heat in [0, 1), anchored to the bundle's pixel reference (`heat_of_ratio`) and
        faded to 0 at the border (`border_taper`).

        Heat is 0 wherever the residual is no more than normal cells show, so nothing covers the
        background, and it is the same number for the same residual on every slide. The model sees
        only the eval transform's centre crop of a tile, so an untapered map would stop in a
        hard-edged square cutting through cells; tapered, it fades out, and where tiles overlap the
        neighbour's untapered middle (the larger heat wins) carries the evidence on.
        """
        reference = config.pixel_reference
        heat = ((self.residual - reference) / (self.residual + reference)).clamp_min(0.0)
        rows = border_taper(heat.shape[-2], heat)
        cols = border_taper(heat.shape[-1], heat)
        return heat * rows[:, None] * cols[None, :]


def heat_of_ratio(ratio: float) -> float:
    """The heat of a residual `ratio` times the pixel reference: max(0, (ratio - 1) / (ratio + 1)),
    i.e. tanh(ln(ratio) / 2) above the reference: 0 = as in normal cells, 1/3 = twice that,
    0.5 = three times, 0.75 = seven times. It depends on the ratio alone, so a colour means the same
    under every bundle, and it is bounded, so no slide runs off the scale."""
    return max(0.0, (ratio - 1) / (ratio + 1))


def border_taper(size: int, like: torch.Tensor) -> torch.Tensor:
    """Weights along one side of `size` pixels (on `like`'s device and dtype): 0 at the outermost
    pixels, rising as a half cosine over the outer HEAT_TAPER of the side, 1 inside."""
    width = max(1.0, size * HEAT_TAPER)
    index = torch.arange(size, device=like.device, dtype=like.dtype)
    distance = torch.minimum(index, size - 1 - index)
    return 0.5 - 0.5 * torch.cos(torch.pi * (distance / width).clamp(max=1.0))


def model_terms(model: DetectionNetworks, x: torch.Tensor,
                feature_layers: str = "last") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The three terms of any method and its reconstruction, as the method's networks compute them."""
    return model.anomaly_terms(x, feature_layers)


def combine(terms: dict[str, torch.Tensor], config: ScoreConfig) -> torch.Tensor:
    """Eq. 7 on raw or normalised terms."""
    values = dict(terms)
    if config.mode == "normalised":
        missing = [name for name in TERMS if name not in config.term_stats]
        if missing:
            raise ValueError(f"normalised scoring needs statistics for {missing}")
        values = {name: (terms[name] - config.term_stats[name][0]) / config.term_stats[name][1] for name in TERMS}
    return config.lam * values["l_d"] + (1 - config.lam) * values["l_r"] + config.beta * values["l_l"]


def combine_arrays(terms: dict[str, np.ndarray], config: ScoreConfig) -> np.ndarray:
    """`combine` on the arrays `compute_terms` returns."""
    return combine({name: torch.as_tensor(values) for name, values in terms.items()}, config).numpy()


def residual_map(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """|x - G(E(x))| averaged over channels and smoothed over 3x3 pixels, N x H x W."""
    residual = (x - reconstruction).abs().mean(1, keepdim=True)
    return F.avg_pool2d(residual, 3, stride=1, padding=1, count_include_pad=False).squeeze(1)


@torch.inference_mode()
def score_batch(model: DetectionNetworks, x: torch.Tensor, config: ScoreConfig) -> ScoreBatch:
    """Score a batch (N x C x H x W in [-1, 1]) with the model in eval mode."""
    terms, reconstruction = model_terms(model, x, config.feature_layers)
    return ScoreBatch(
        score=combine(terms, config), residual=residual_map(x, reconstruction),
        reconstruction=reconstruction, **terms,
    )


@torch.inference_mode()
def compute_terms(model: DetectionNetworks, x: torch.Tensor, feature_layers: str = "last",
                  batch: int = 64) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw terms and residual maps of many images, scored `batch` at a time (eval mode)."""
    device = next(model.parameters()).device
    terms: dict[str, list[np.ndarray]] = {name: [] for name in TERMS}
    residuals = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch].to(device)
        values, reconstruction = model_terms(model, chunk, feature_layers)
        for name in TERMS:
            terms[name].append(values[name].float().cpu().numpy())
        residuals.append(residual_map(chunk, reconstruction).float().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in terms.items()}, np.concatenate(residuals)


def fit_term_stats(terms: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each raw term on normal images."""
    stats = {}
    for name in TERMS:
        values = np.asarray(terms[name], dtype=np.float64)
        if values.size < 2:
            raise ValueError("normalising the score terms needs at least 2 normal images")
        std = float(values.std(ddof=1))
        stats[name] = (float(values.mean()), std if std > 1e-12 else max(abs(float(values.mean())), 1.0))
    return stats


def fit_pixel_reference(residuals: np.ndarray) -> float:
    """The residual at HEAT_QUANTILE over all validation-normal pixels."""
    return max(float(np.quantile(np.asarray(residuals), HEAT_QUANTILE)), 1e-6)


@dataclass(frozen=True)
class Threshold:
    value: float
    rule: str  # how it was chosen, in words, stored in the bundle


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (MONAI); NaN when only one class is present."""
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return float("nan")
    # MONAI annotates the result as any array-like; with average="macro" (its default) it is a float
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, dtype=np.float64)),  # type: ignore[arg-type]
                                 torch.as_tensor(labels, dtype=torch.float64)))


def sensitivity_at_specificity(scores: np.ndarray, labels: np.ndarray, specificity: float) -> float:
    """The share of anomalies flagged at the strictest threshold that still leaves at least
    `specificity` of the normals unflagged (flagged: score above the threshold), e.g. at 0.99 with
    100 normals at most one normal is above it. NaN when a class is missing."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    normals, anomalies = np.sort(scores[labels == 0]), scores[labels == 1]
    if not len(normals) or not len(anomalies):
        return float("nan")
    kept = math.ceil(specificity * len(normals) - 1e-9)  # normals that must stay at or below the threshold
    threshold = normals[max(kept, 1) - 1]
    return float((anomalies > threshold).mean())


def screening_metrics(scores: np.ndarray, labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    """AUC of the scores and, for the flags given (a single threshold's `scores > threshold`, or each
    slide's own decision), sensitivity, specificity, F1, accuracy."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    flagged = np.asarray(flagged, dtype=bool)
    tp = int((flagged & (labels == 1)).sum())
    fp = int((flagged & (labels == 0)).sum())
    tn = int((~flagged & (labels == 0)).sum())
    fn = int((~flagged & (labels == 1)).sum())
    n_anomalous, n_normal = tp + fn, tn + fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    sensitivity = tp / n_anomalous if n_anomalous else float("nan")
    return {
        "auc": roc_auc(scores, labels),
        "sensitivity": sensitivity,
        "specificity": tn / n_normal if n_normal else float("nan"),
        "f1": 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity > 0 else 0.0,
        "accuracy": (tp + tn) / len(labels) if len(labels) else float("nan"),
        "n_normal": n_normal,
        "n_anomalous": n_anomalous,
    }
