"""The detection methods, by name: the paper's model ("ganad") and the GAN baselines it is compared
with, each one implementation of `protocol.DetectionMethod`. A bundle names its method;
`build_model` makes the empty networks that its weights are loaded into. Adding a method is its
folder (networks, loss, glue) and one line here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch

from ganad_clinic.imaging.transforms import TRAIN_GEOMETRIES
from ganad_clinic.model import losses
from ganad_clinic.model.baselines.alad.method import METHOD as ALAD
from ganad_clinic.model.baselines.anogan.method import METHOD as ANOGAN
from ganad_clinic.model.baselines.efficient_gan.method import METHOD as EFFICIENT_GAN
from ganad_clinic.model.config import TrainConfig
from ganad_clinic.model.ganad.method import METHOD as GANAD
from ganad_clinic.model.networks import SPECS, ArchSpec
from ganad_clinic.model.protocol import DetectionMethod, DetectionNetworks

_METHODS: tuple[DetectionMethod[Any], ...] = (  # one line per method; the first is the default
    GANAD,
    ANOGAN,
    EFFICIENT_GAN,
    ALAD,
)
REGISTRY: Mapping[str, DetectionMethod[Any]] = MappingProxyType({method.name: method for method in _METHODS})
METHODS = tuple(REGISTRY)
DESCRIPTIONS = {name: method.description for name, method in REGISTRY.items()}
_BUILDING = threading.Lock()  # the global generator is borrowed while networks are built (`build_model`)


def method_for(name: str) -> DetectionMethod[Any]:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {METHODS}")
    return REGISTRY[name]


def build_model(method: str, spec: ArchSpec, image_size: int, channels: int, latent: int,
                options: Mapping[str, Any] | None = None, *, seed: int = 0,
                continue_with: torch.Generator | None = None) -> DetectionNetworks:
    """The untrained networks of `method`, initialised from `seed`; `options` are the method's own
    settings (see `method_options`).

    PyTorch's layers draw their initial weights from the global CPU generator and take no other.
    So that building changes nothing of the process's random state (a screening thread beside a
    training keeps its stream), the global generator is forked, seeded, and restored afterwards,
    one build at a time; `continue_with` (a CPU generator) receives the stream where the build left
    it, for a training's further draws."""
    chosen = method_for(method)
    with _BUILDING, torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        model = chosen.build(spec, image_size, channels, latent, dict(options or {}))
        if continue_with is not None:
            continue_with.set_state(torch.random.default_generator.get_state())
    return model


def method_of(model: DetectionNetworks) -> str:
    return model.method


def method_options(config: TrainConfig) -> dict[str, Any]:
    """The constructor options a training run gives its method (AnoGAN searches with the score's λ)."""
    return method_for(config.method).options(config)


def check_config(config: TrainConfig) -> TrainConfig:
    """`config`, its names checked against their owners: the method, the architecture spec, the
    GAN loss and the training geometry."""
    method_for(config.method)
    if config.spec not in SPECS:
        raise ValueError(f"unknown architecture spec {config.spec!r}; choose one of {sorted(SPECS)}")
    if config.gan not in losses.GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {config.gan!r}; choose one of {losses.GAN_LOSSES}")
    if config.geometry not in TRAIN_GEOMETRIES:
        raise ValueError(f"unknown training geometry {config.geometry!r}; choose one of {TRAIN_GEOMETRIES}")
    return config


def arch_of(config: TrainConfig) -> ArchSpec:
    """The architecture a run builds: its spec with every width multiplied by `config.width`."""
    check_config(config)
    return SPECS[config.spec].scaled(config.width) if config.width != 1.0 else SPECS[config.spec]
