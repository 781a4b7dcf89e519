"""The paper's score terms (Eq. 4-6) on its networks, raw and all-layer forms.

Typed against `PaperNetworks`, the parts of `torch_model.GanAutoencoder` the terms read, so that
the networks' module can use these functions and tests can pass a hand-made toy.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ganad_clinic.model.config import FEATURE_LAYERS
from ganad_clinic.model.networks import FeatureScales


class PaperNetworks(Protocol):
    """What the terms read of the paper's networks."""

    @property
    def encoder(self) -> Any: ...  # forward_with_maps(x) -> (E(x), its hidden maps)

    @property
    def generator(self) -> Any: ...  # G(z)

    @property
    def critic(self) -> Any: ...  # feature_maps(x) -> D's hidden maps, the last f_D

    @property
    def residual_units(self) -> FeatureScales: ...

    @property
    def term_layers(self) -> dict[str, slice]: ...


def raw_terms(model: PaperNetworks, x: torch.Tensor,
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
        last = {name: (layers[-1][0] - layers[-1][1]).abs().flatten(1).sum(1) for name, layers in pairs.items()}
        return last, reconstruction
    units = model.residual_units
    evidence = _layer_evidence(model, pairs, (float(units.evidence_power),))[..., 0]
    return _terms_of_evidence(model, evidence / units.layer_spread.to(evidence)), reconstruction


def _residual_pairs(
    model: PaperNetworks, x: torch.Tensor
) -> tuple[dict[str, list[tuple[torch.Tensor, torch.Tensor]]], torch.Tensor]:
    """Per term, the (x-side, x̂-side) pairs of its layers."""
    z, maps_x = model.encoder.forward_with_maps(x)
    reconstruction = model.generator(z)
    z_again, maps_rec = model.encoder.forward_with_maps(reconstruction)
    critic_pairs = [tuple(m.chunk(2)) for m in model.critic.feature_maps(torch.cat([x, reconstruction]))]
    pairs = {"l_r": [(x, reconstruction)], "l_d": critic_pairs, "l_l": list(zip(maps_x + [z], maps_rec + [z_again]))}
    return pairs, reconstruction


def _all_layers(model: PaperNetworks,
                pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every term's pairs in one list, in the layer order of `model.residual_units` (`term_layers`)."""
    return [pair for name in model.term_layers for pair in pairs[name]]


def _layer_evidence(model: PaperNetworks, pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
                    powers: tuple[float, ...]) -> torch.Tensor:
    """N x layers x powers: each layer's unit residuals summarised by each generalised mean."""
    return torch.stack([_evidence(a - b, scale, powers) for (a, b), scale
                        in zip(_all_layers(model, pairs), model.residual_units.scales())], 1)


def _terms_of_evidence(model: PaperNetworks, evidence: torch.Tensor) -> dict[str, torch.Tensor]:
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
