"""What calibration fits of the paper's model besides the term statistics: the units of its
all-layer terms and their form (per-feature units or none, the evidence power)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

import numpy as np
import torch

from ganad_clinic.model.config import ScoreConfig
from ganad_clinic.model.ganad.terms import (
    PaperNetworks,
    _all_layers,
    _layer_evidence,
    _residual_pairs,
    _terms_of_evidence,
)
from ganad_clinic.model.networks import DEFAULT_EVIDENCE_POWER
from ganad_clinic.model.scoring import combine, fit_term_stats, roc_auc


class FittableNetworks(PaperNetworks, Protocol):
    """The paper's networks as calibration needs them: the terms' parts and where the weights live."""

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...


EVIDENCE_POWERS = (DEFAULT_EVIDENCE_POWER, 4, 2, 1)  # the generalised means fitting chooses from, default first
FORM_CHOICE_MIN = 20  # validation images of each class needed to choose the score's form on them
DEFAULT_SCORE = ScoreConfig()  # the default score settings (one shared, frozen instance)


@torch.inference_mode()
def fit_residual_units(model: FittableNetworks, x_normal: torch.Tensor, x_val: torch.Tensor | None = None,
                       val_labels: np.ndarray | None = None, config: ScoreConfig = DEFAULT_SCORE,
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
    aucs: list[float] = []  # the forms' validation AUCs, when choosing
    for per_feature in (True, False) if choosing else (True,):
        if not per_feature:
            units.clear()
        train_evidence = _evidence_of(model, x_normal, batch)
        spreads = train_evidence.std(0)
        # a dead layer must not divide by ~0
        spreads = spreads.clamp_min(spreads.mean(0, keepdim=True) * 1e-2).clamp_min(1e-12)
        val_evidence = _evidence_of(model, x_val, batch) if choosing and x_val is not None else None
        for index in range(len(EVIDENCE_POWERS)):
            auc = None
            if val_evidence is not None and val_labels is not None:  # choosing
                train_terms = _terms_of_evidence(model, train_evidence[..., index] / spreads[:, index])
                val_terms = _terms_of_evidence(model, val_evidence[..., index] / spreads[:, index])
                stats = fit_term_stats({k: v.numpy() for k, v in train_terms.items()})
                auc = roc_auc(combine(val_terms, replace(config, term_stats=stats)).numpy(), val_labels)
                aucs.append(auc)
            forms.append((per_feature, index, spreads[:, index], auc))
    per_feature, index, spread, auc = forms[int(np.argmax(aucs))] if choosing else forms[0]
    if per_feature:
        for scale, values in zip(units.scales(), fitted):
            scale.copy_(values)
    units.set_layer_spread(spread.tolist(), EVIDENCE_POWERS[index])
    return auc


def _chunks(model: FittableNetworks, x: torch.Tensor, batch: int) -> Iterator[torch.Tensor]:
    device = next(model.parameters()).device
    return (x[start:start + batch].to(device) for start in range(0, len(x), batch))


def _evidence_of(model: FittableNetworks, x: torch.Tensor, batch: int) -> torch.Tensor:
    """N x layers x EVIDENCE_POWERS of images, in the units fitted so far, on the CPU in float64."""
    return torch.cat([_layer_evidence(model, _residual_pairs(model, chunk)[0], EVIDENCE_POWERS).double().cpu()
                      for chunk in _chunks(model, x, batch)])
