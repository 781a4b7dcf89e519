"""The anomaly score A(x) of Eq. 4-7, residual heat maps, thresholds and screening metrics.

A(x) = λ·L_D(x) + (1-λ)·L_R(x) + β·L_L(x), with
  L_D = Σ|f_D(x) - f_D(G(E(x)))|   (critic features),
  L_R = Σ|x - G(E(x))|             (pixels),
  L_L = Σ|E(x) - E(G(E(x)))|       (latent).
The three sums live on very different scales (thousands of pixels against a few hundred features),
so besides the paper's raw form we offer a normalised one: each term becomes a z-score against the
training normals' scores, which makes λ and β mean what they say. The default ("all" layers) also
measures every residual in units of its spread on the training normals and summarises each layer
by a soft maximum rather than a sum (`raw_terms`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import compute_roc_auc

from ganad_clinic.model.baselines.common import BaselineModel
from ganad_clinic.model.networks import DEFAULT_EVIDENCE_POWER, GanAutoencoder

TERMS = ("l_d", "l_r", "l_l")
SCORE_MODES = ("normalised", "raw")
FEATURE_LAYERS = ("all", "last")
EVIDENCE_POWERS = (DEFAULT_EVIDENCE_POWER, 4, 2, 1)  # the generalised means fitting chooses from, default first
FORM_CHOICE_MIN = 20  # validation images of each class needed to choose the score's form on them
HEAT_QUANTILE = 0.99  # the pixel reference: heat 0 up to the top 1 % of validation-normal pixels' residual
HEAT_TAPER = 1 / 8  # the outer fraction of each side of the model's view over which heat fades to 0


@dataclass(frozen=True)
class ScoreConfig:
    """How the three terms are combined; stored in the bundle with the statistics it needs."""

    lam: float = 0.8
    beta: float = 1.0
    mode: str = "normalised"
    feature_layers: str = "last"  # "last": the paper's f_D and E(x); "all": every hidden layer
    term_stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # term -> (mean, std) on normals
    pixel_reference: float = 1.0  # residual that normal cells reach (heat 0 up to it, 0.5 at three times it)

    def __post_init__(self) -> None:
        if self.mode not in SCORE_MODES:
            raise ValueError(f"unknown score mode {self.mode!r}; choose one of {SCORE_MODES}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"λ must lie in [0, 1], not {self.lam}")
        if self.beta < 0:
            raise ValueError(f"β must not be negative, not {self.beta}")


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


def raw_terms(model: GanAutoencoder, x: torch.Tensor,
              feature_layers: str = "last") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The three raw terms per sample and G(E(x)); D runs on x and x̂ as one batch.

    feature_layers="last" is the paper: Σ|·| of the pixels, of f_D (D's last hidden layer) and of
    E's output. "all" compares the pixels, every hidden layer of D and every hidden layer of E plus
    its output, each feature's residual in units of its spread on the training normals
    (`fit_residual_units`), each layer summarised by a generalised mean of the units' fitted power
    (8 by default, a soft maximum: an abnormal cell occupies a small part of the image, and a plain
    mean dilutes it in the background's noise; a whole different digit favours a plain mean) and
    divided by that summary's spread on the normals.
    """
    if feature_layers not in FEATURE_LAYERS:
        raise ValueError(f"unknown feature layers {feature_layers!r}; choose one of {FEATURE_LAYERS}")
    pairs, reconstruction = _residual_pairs(model, x)
    if feature_layers == "last":
        return {name: (layers[-1][0] - layers[-1][1]).abs().flatten(1).sum(1) for name, layers in pairs.items()}, reconstruction
    units = model.residual_units
    evidence = _layer_evidence(model, pairs, (float(units.evidence_power),))[..., 0]
    return _terms_of_evidence(model, evidence / units.layer_spread.to(evidence)), reconstruction


def _residual_pairs(model: GanAutoencoder, x: torch.Tensor) -> tuple[dict[str, list[tuple[torch.Tensor, torch.Tensor]]], torch.Tensor]:
    """Per term, the (x-side, x̂-side) pairs of its layers."""
    z, maps_x = model.encoder.forward_with_maps(x)
    reconstruction = model.generator(z)
    z_again, maps_rec = model.encoder.forward_with_maps(reconstruction)
    critic_pairs = [tuple(m.chunk(2)) for m in model.critic.feature_maps(torch.cat([x, reconstruction]))]
    pairs = {"l_r": [(x, reconstruction)], "l_d": critic_pairs, "l_l": list(zip(maps_x + [z], maps_rec + [z_again]))}
    return pairs, reconstruction


def _all_layers(model: GanAutoencoder,
                pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every term's pairs in one list, in the layer order of `model.residual_units` (`term_layers`)."""
    return [pair for name in model.term_layers for pair in pairs[name]]


def _layer_evidence(model: GanAutoencoder, pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
                    powers: tuple[float, ...]) -> torch.Tensor:
    """N x layers x powers: each layer's unit residuals summarised by each generalised mean."""
    return torch.stack([_evidence(a - b, scale, powers) for (a, b), scale
                        in zip(_all_layers(model, pairs), model.residual_units.scales())], 1)


def _terms_of_evidence(model: GanAutoencoder, evidence: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each term: the sum of its layers' evidence (N x layers, already divided by the spreads)."""
    return {name: evidence[:, layers].sum(1) for name, layers in model.term_layers.items()}


def _evidence(residual: torch.Tensor, scale: torch.Tensor, powers: tuple[float, ...]) -> torch.Tensor:
    """N x powers: generalised means of |residual| / scale over each sample's features, computed in
    float32 relative to the peak so that a power cannot overflow."""
    units = (residual.abs() / scale).flatten(1).float()
    peak = units.amax(1, keepdim=True).clamp_min(1e-12)
    relative = units / peak
    return torch.stack([peak.squeeze(1) * _power(relative, power).mean(1).pow(1 / power) for power in powers], 1)


def _power(x: torch.Tensor, power: float) -> torch.Tensor:
    """x ** power, by repeated squaring for the powers of two that EVIDENCE_POWERS holds: a general
    pow over every feature residual was a seventh of the scoring time at 64 px."""
    if power == 1:
        return x
    if power in (2, 4, 8):
        return _power(x * x, power / 2)
    return x.pow(power)


def model_terms(model: GanAutoencoder | BaselineModel, x: torch.Tensor,
                feature_layers: str = "last") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The three terms of any method and its reconstruction: a baseline computes its own."""
    if isinstance(model, BaselineModel):
        return model.anomaly_terms(x)
    return raw_terms(model, x, feature_layers)


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
def score_batch(model: GanAutoencoder | BaselineModel, x: torch.Tensor, config: ScoreConfig) -> ScoreBatch:
    """Score a batch (N x C x H x W in [-1, 1]) with the model in eval mode."""
    terms, reconstruction = model_terms(model, x, config.feature_layers)
    return ScoreBatch(
        score=combine(terms, config), residual=residual_map(x, reconstruction),
        reconstruction=reconstruction, **terms,
    )


@torch.inference_mode()
def compute_terms(model: GanAutoencoder | BaselineModel, x: torch.Tensor, feature_layers: str = "last",
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


@torch.inference_mode()
def fit_residual_units(model: GanAutoencoder, x_normal: torch.Tensor, x_val: torch.Tensor | None = None,
                       val_labels: np.ndarray | None = None, config: ScoreConfig = ScoreConfig(),
                       batch: int = 64) -> float | None:
    """Fit the all-layer terms' units on normal images (eval mode), in place: each feature's residual
    spread over the images, then the spread of each layer's evidence in those units.

    That is the default form (per-feature units, power 8). Given validation images with at least
    FORM_CHOICE_MIN normal and as many anomalous ones, the form is chosen on them instead (on fewer,
    such as the paper's 5 + 15, most forms tie or differ by a pair or two, and the choice would
    follow noise): per-feature units or none (every feature in its own scale,
    the units left at 1), and a power of EVIDENCE_POWERS, whichever score (`config`'s λ, β and mode)
    has the best validation AUC, ties going to the earlier (the default first). Local anomalies (one
    abnormal cell in a crop) want a soft maximum, diffuse ones (another digit) a plainer mean; units
    make a quiet feature count as much as a loud one, which helps where quiet features carry the
    evidence and hurts where a rarely used one (a digit's blank margin) is noise. Returns the chosen
    form's validation AUC (None when the default is kept).
    """
    units = model.residual_units
    units.fit([a - b for a, b in _all_layers(model, _residual_pairs(model, chunk)[0])]
              for chunk in _chunks(model, x_normal, batch))
    fitted = [scale.clone() for scale in units.scales()]
    choosing = (x_val is not None and val_labels is not None
                and min((np.asarray(val_labels) == label).sum() for label in (0, 1)) >= FORM_CHOICE_MIN)
    forms = []  # (per-feature units, power index, layer spreads, validation AUC)
    for per_feature in (True, False) if choosing else (True,):
        if not per_feature:
            units.clear()
        train_evidence = _evidence_of(model, x_normal, batch)
        spreads = train_evidence.std(0)
        spreads = spreads.clamp_min(spreads.mean(0, keepdim=True) * 1e-2).clamp_min(1e-12)  # a dead layer must not divide by ~0
        val_evidence = _evidence_of(model, x_val, batch) if choosing else None
        for index in range(len(EVIDENCE_POWERS)):
            auc = None
            if choosing:
                train_terms = _terms_of_evidence(model, train_evidence[..., index] / spreads[:, index])
                val_terms = _terms_of_evidence(model, val_evidence[..., index] / spreads[:, index])
                stats = fit_term_stats({k: v.numpy() for k, v in train_terms.items()})
                auc = roc_auc(combine(val_terms, replace(config, term_stats=stats)).numpy(), val_labels)
            forms.append((per_feature, index, spreads[:, index], auc))
    per_feature, index, spread, auc = forms[int(np.argmax([form[3] for form in forms]))] if choosing else forms[0]
    if per_feature:
        for scale, values in zip(units.scales(), fitted):
            scale.copy_(values)
    units.set_layer_spread(spread.tolist(), EVIDENCE_POWERS[index])
    return auc


def _chunks(model: GanAutoencoder, x: torch.Tensor, batch: int) -> Iterator[torch.Tensor]:
    device = next(model.parameters()).device
    return (x[start:start + batch].to(device) for start in range(0, len(x), batch))


def _evidence_of(model: GanAutoencoder, x: torch.Tensor, batch: int) -> torch.Tensor:
    """N x layers x EVIDENCE_POWERS of images, in the units fitted so far, on the CPU in float64."""
    return torch.cat([_layer_evidence(model, _residual_pairs(model, chunk)[0], EVIDENCE_POWERS).double().cpu()
                      for chunk in _chunks(model, x, batch)])


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


def choose_threshold(scores: np.ndarray, labels: np.ndarray, percentile: float = 95.0,
                     target_sensitivity: float | None = None) -> Threshold:
    """Pick the flagging threshold on validation data only.

    With anomalies: Youden's J (or the highest threshold reaching `target_sensitivity`). With normal
    images only: the `percentile` of their scores, never a "best F1" (that flags everything).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    normals, anomalies = scores[labels == 0], scores[labels == 1]
    if normals.size == 0:
        raise ValueError("choosing a threshold needs at least one validation-normal image")
    if anomalies.size == 0:
        value = float(np.percentile(normals, percentile))
        return Threshold(value, f"{percentile:g}th percentile of {normals.size} validation-normal scores")
    candidates = np.unique(scores)
    sensitivity = np.array([(anomalies >= t).mean() for t in candidates])
    specificity = np.array([(normals < t).mean() for t in candidates])
    if target_sensitivity is not None:
        reaching = np.flatnonzero(sensitivity >= target_sensitivity)
        index = int(reaching[-1])
        return Threshold(float(candidates[index]),
                         f"highest threshold with sensitivity >= {target_sensitivity:g} on validation "
                         f"({normals.size} normal, {anomalies.size} anomalous)")
    index = int(np.argmax(sensitivity + specificity - 1))
    return Threshold(float(candidates[index]),
                     f"Youden's J on validation ({normals.size} normal, {anomalies.size} anomalous)")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (MONAI); NaN when only one class is present."""
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return float("nan")
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, dtype=np.float64)),
                                 torch.as_tensor(labels, dtype=torch.float64)))


def screening_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float | int]:
    """AUC and, at `threshold` (flag when score >= threshold), sensitivity, specificity, F1, accuracy."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    flagged = scores >= threshold
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
        "threshold": float(threshold),
        "n_normal": n_normal,
        "n_anomalous": n_anomalous,
    }
