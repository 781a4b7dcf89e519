"""Encoder E, Generator G (= the autoencoder's decoder) and Critic D of the paper (Table 1).

Table 1 gives layer counts per dataset: G has i convs, j transposed convs and k linears; D has l
convs and m linears; E has p convs and q linears. Widths are not in the paper: ours are chosen so
that the ALL spec at 3x220x220 with latent 200 lands near Table 5's parameter counts.

Any square image size works: stride-2 (or stride-4) layers are spread over the available layers so
that the smallest feature map is about 4-7 pixels; the generator overshoots to the next multiple
and centre-crops to the requested size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import cast

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

BASE_MAX = 7  # the smallest feature map is at most this wide
DEFAULT_EVIDENCE_POWER = 8  # the all-layer score's soft maximum until fitting chooses another


@dataclass(frozen=True)
class ArchSpec:
    """Layer counts of Table 1 plus our channel widths (one width per conv layer)."""

    name: str
    i: int  # G convs (after the transposed convs)
    j: int  # G transposed convs
    k: int  # G linears (before the transposed convs)
    l: int  # noqa: E741 (Table 1's letter)  D convs
    m: int  # D linears
    p: int  # E convs
    q: int  # E linears
    encoder_widths: tuple[int, ...]
    critic_widths: tuple[int, ...]
    generator_widths: tuple[int, ...]  # output channels of each transposed conv but the last
    hidden_linear: int = 1024  # width of the hidden linear layers (k > 1 or m > 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def scaled(self, width: float) -> ArchSpec:
        """The same layer counts with every width multiplied by `width` (at least 8 channels)."""
        def scale(widths: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(max(8, round(w * width)) for w in widths)

        return replace(self, encoder_widths=scale(self.encoder_widths), critic_widths=scale(self.critic_widths),
                       generator_widths=scale(self.generator_widths),
                       hidden_linear=max(8, round(self.hidden_linear * width)))

    @classmethod
    def from_dict(cls, data: dict) -> ArchSpec:
        fields = dict(data)
        for key in ("encoder_widths", "critic_widths", "generator_widths"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


SPECS: dict[str, ArchSpec] = {
    "mnist": ArchSpec("mnist", i=0, j=3, k=2, l=3, m=2, p=3, q=1,
                      encoder_widths=(32, 64, 128), critic_widths=(64, 128, 128),
                      generator_widths=(128, 64)),
    "cifar10": ArchSpec("cifar10", i=0, j=4, k=0, l=3, m=1, p=4, q=0,
                        encoder_widths=(128, 256, 512), critic_widths=(128, 256, 512),
                        generator_widths=(512, 256, 128)),
    "svhn": ArchSpec("svhn", i=0, j=4, k=0, l=3, m=1, p=4, q=0,
                     encoder_widths=(128, 256, 512), critic_widths=(128, 256, 512),
                     generator_widths=(512, 256, 128)),
    "all": ArchSpec("all", i=1, j=8, k=0, l=6, m=1, p=6, q=1,
                    encoder_widths=(64, 128, 256, 448, 448, 256),
                    critic_widths=(64, 128, 256, 384, 384, 256),
                    generator_widths=(128, 192, 160, 128, 96, 64, 48)),
}


def scale_plan(image_size: int, n_layers: int) -> tuple[int, list[int]]:
    """Return (base, factors): the smallest map size and a stride (1, 2 or 4) per layer.

    The product of the factors times `base` is the first size >= `image_size` reachable from a map
    of at most BASE_MAX pixels. Strides go to the first layers (the encoder's cheap end).
    """
    if image_size < 4:
        raise ValueError(f"image size {image_size} is too small (at least 4)")
    doublings = max(0, math.ceil(math.log2(image_size / BASE_MAX)))
    if doublings > 2 * n_layers:
        raise ValueError(
            f"image size {image_size} needs {doublings} halvings but the spec has only "
            f"{n_layers} layers to do them (at most 2 each)"
        )
    factors = [1] * n_layers
    for index in range(doublings):
        factors[index % n_layers] *= 2
    base = math.ceil(image_size / 2**doublings)
    return base, factors


def _down(in_ch: int, out_ch: int, factor: int) -> nn.Conv2d:
    """A conv that divides the map by `factor` (1, 2 or 4), rounding down."""
    kernel = {1: 3, 2: 4, 4: 8}[factor]
    return nn.Conv2d(in_ch, out_ch, kernel, stride=factor, padding=(kernel - factor) // 2 if factor > 1 else 1)


def _up(in_ch: int, out_ch: int, factor: int) -> nn.ConvTranspose2d:
    """A transposed conv that multiplies the map by `factor` (1, 2 or 4) exactly."""
    kernel = {1: 3, 2: 4, 4: 8}[factor]
    padding = 1 if factor == 1 else (kernel - factor) // 2
    return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=factor, padding=padding)


def _conv_trunk(spec_widths: tuple[int, ...], channels: int, image_size: int,
                norm: bool, sn: bool) -> tuple[nn.Sequential, int]:
    """Convs with LeakyReLU(0.2) and Dropout(0.2); returns the trunk and its output map size."""
    _, factors = scale_plan(image_size, len(spec_widths))
    layers: list[nn.Module] = []
    in_ch = channels
    for out_ch, factor in zip(spec_widths, factors):
        conv = _down(in_ch, out_ch, factor)
        layers.append(spectral_norm(conv) if sn else conv)
        if norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers += [nn.LeakyReLU(0.2), Dropout(0.2)]
        in_ch = out_ch
    trunk = nn.Sequential(*layers)
    with torch.no_grad():
        size = trunk.eval()(torch.zeros(1, channels, image_size, image_size)).shape[-1]
    trunk.train()
    return trunk, size


class Dropout(nn.Dropout):
    """nn.Dropout that draws its masks from `generator` when one is attached (`attach_dropout_generator`),
    so that a training run's masks come from its own stream rather than torch's global one. The
    same arithmetic as ATen's dropout on the CPU (a Bernoulli mask divided by 1 - p), so a mask
    drawn from the same stream is the same mask."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        if self.p == 1:
            return x * 0
        noise = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * noise.div_(1 - self.p)


def attach_dropout_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    """Let every `Dropout` of `module` draw from `generator` (None: torch's global generator again)."""
    for layer in module.modules():
        if isinstance(layer, Dropout):
            layer.generator = generator


class FeatureScales(nn.Module):
    """Units for the residuals of the all-layer score terms (ones until fitted).

    Each feature (pixel, or channel and position of a hidden map) has its residual measured in its
    spread over the training normals, so that a quiet feature counts as much as a loud one; each
    layer's evidence is then divided by its spread over those normals, so that every layer counts
    alike. `evidence_power` is the generalised mean that summarises a layer (the spreads belong to
    it). Buffers, so that they travel in the bundle's state dict with the weights they belong to.
    """

    layer_spread: torch.Tensor  # buffers, registered in __init__
    evidence_power: torch.Tensor

    def __init__(self, shapes: Sequence[tuple[int, ...]]) -> None:
        super().__init__()
        self.layers = len(shapes)
        for index, shape in enumerate(shapes):
            self.register_buffer(f"layer_{index}", torch.ones(shape))
        self.register_buffer("layer_spread", torch.ones(len(shapes)))
        self.register_buffer("evidence_power", torch.tensor(float(DEFAULT_EVIDENCE_POWER)))

    def scales(self) -> list[torch.Tensor]:
        return [getattr(self, f"layer_{index}") for index in range(self.layers)]

    @torch.no_grad()
    def fit(self, batches: Iterable[Sequence[torch.Tensor]]) -> None:
        """Set each feature's scale to its standard deviation over the samples of all batches (each
        batch: one N x ... map per layer), accumulated in float64 so that no batch is kept."""
        scales = self.scales()
        count = 0
        total = [torch.zeros(s.shape, dtype=torch.float64) for s in scales]
        squares = [torch.zeros(s.shape, dtype=torch.float64) for s in scales]
        for maps in batches:
            count += len(maps[0])
            for index, values in enumerate(maps):
                values = values.detach().double().cpu()
                total[index] += values.sum(0)
                squares[index] += values.square().sum(0)
        if count < 2:
            raise ValueError("fitting feature scales needs at least 2 normal images")
        for index, scale in enumerate(scales):
            mean = total[index] / count
            std = ((squares[index] / count - mean.square()).clamp_min(0) * count / (count - 1)).sqrt()
            floor = max(float(std.mean()) * 1e-2, 1e-6)  # a dead feature must not divide by ~0
            scale.copy_(std.clamp_min(floor).to(scale.dtype))

    @torch.no_grad()
    def clear(self) -> None:
        """Every feature in its own scale: all units 1."""
        for scale in self.scales():
            scale.fill_(1.0)

    def per_feature(self) -> bool:
        """Whether the features have fitted units (rather than all 1)."""
        return any(not bool((scale == 1).all()) for scale in self.scales())

    def form(self) -> dict[str, float | bool]:
        """The score's form these units give, for results files: power and per-feature units."""
        return {"evidence_power": float(self.evidence_power), "per_feature_units": self.per_feature()}

    @torch.no_grad()
    def set_layer_spread(self, spread: Sequence[float], power: float) -> None:
        """Each layer's evidence spread on the normals, for the power its evidence is summarised with."""
        self.layer_spread.copy_(torch.as_tensor(list(spread), dtype=self.layer_spread.dtype))
        self.evidence_power.fill_(power)


class Encoder(nn.Module):
    """E(x): p convs (+ q linears) to a latent vector, layer-normalised like G's N(0, I) input.

    `spectral` puts spectral normalisation on the convs (ALAD's encoder has it; ours does not).
    """

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int, spectral: bool = False) -> None:
        super().__init__()
        n_trunk = spec.p if spec.q else spec.p - 1  # with q = 0 the last conv maps to the latent
        if len(spec.encoder_widths) != n_trunk:
            raise ValueError(f"spec {spec.name}: {n_trunk} encoder trunk convs but {len(spec.encoder_widths)} widths")
        widths = spec.encoder_widths
        self.trunk, size = _conv_trunk(widths, channels, image_size, norm=True, sn=spectral)
        head: list[nn.Module] = []
        if spec.q == 0:
            head += [nn.Conv2d(widths[-1], latent, size), nn.Flatten()]
        else:
            flat = widths[-1] * size * size
            for _ in range(spec.q - 1):
                head += [nn.Flatten(), nn.Linear(flat, spec.hidden_linear), nn.LeakyReLU(0.2), Dropout(0.2)]
                flat = spec.hidden_linear
            head += [nn.Flatten(), nn.Linear(flat, latent)]
        head.append(nn.LayerNorm(latent, elementwise_affine=False))
        self.head = nn.Sequential(*head)
        with torch.no_grad():
            probe = torch.zeros(1, channels, image_size, image_size)
            shapes = [tuple(m.shape[1:]) for m in _block_outputs(self.trunk.eval(), probe)]
        self.trunk.train()
        self.feature_shapes = [*shapes, (latent,)]  # the hidden maps of forward_with_maps, then E(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """E(x) and the output of every conv block (the encoder's hidden feature layers)."""
        maps = _block_outputs(self.trunk, x)
        return self.head(maps[-1]), maps


class Generator(nn.Module):
    """G(z): k linears, j transposed convs, i convs, ReLU + BatchNorm, tanh output in [-1, 1].

    The same module is the autoencoder's decoder: G(E(x)) reconstructs x.
    """

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__()
        if len(spec.generator_widths) != spec.j - 1:
            raise ValueError(f"spec {spec.name}: {spec.j} transposed convs need {spec.j - 1} widths")
        self.image_size = image_size
        n_up = spec.j - 1 if spec.k == 0 else spec.j
        base, factors = scale_plan(image_size, n_up)
        factors.reverse()  # refine at the small sizes first, where a layer is cheap
        widths = list(spec.generator_widths)
        out_channels = widths + [channels if spec.i == 0 else widths[-1]]
        layers: list[nn.Module] = []
        if spec.k == 0:
            self.stem: nn.Module = nn.Identity()
            self.stem_shape = (latent, 1, 1)
            layers += [nn.ConvTranspose2d(latent, out_channels[0], base), nn.BatchNorm2d(out_channels[0]), nn.ReLU()]
            in_ch, ups = out_channels[0], out_channels[1:]
        else:
            stem: list[nn.Module] = []
            width = latent
            for _ in range(spec.k - 1):
                stem += [nn.Linear(width, spec.hidden_linear), nn.BatchNorm1d(spec.hidden_linear), nn.ReLU()]
                width = spec.hidden_linear
            stem_channels = widths[0]
            stem += [nn.Linear(width, stem_channels * base * base), nn.BatchNorm1d(stem_channels * base * base),
                     nn.ReLU()]
            self.stem = nn.Sequential(*stem)
            self.stem_shape = (stem_channels, base, base)
            in_ch, ups = stem_channels, out_channels
        for index, (out_ch, factor) in enumerate(zip(ups, factors)):
            layers.append(_up(in_ch, out_ch, factor))
            last = index == len(ups) - 1
            if not (last and spec.i == 0):
                layers += [nn.BatchNorm2d(out_ch), nn.ReLU()]
            in_ch = out_ch
        for index in range(spec.i):
            last = index == spec.i - 1
            layers.append(nn.Conv2d(in_ch, channels if last else in_ch, 3, padding=1))
            if not last:
                layers += [nn.BatchNorm2d(in_ch), nn.ReLU()]
        layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(z.flatten(1)).view(z.shape[0], *self.stem_shape)
        image = self.body(h)
        excess = image.shape[-1] - self.image_size
        if excess:
            start = excess // 2
            image = image[..., start:start + self.image_size, start:start + self.image_size]
        return image


class Critic(nn.Module):
    """D(x): l spectrally normalised convs and m linears, LeakyReLU(0.2), dropout 0.2, one logit.

    `feature_maps(x)[-1]` is f_D, the last hidden layer, used by the discrimination loss L_D (Eq. 4).
    No BatchNorm: spectral normalisation replaces it, and per-sample features must not depend on
    the batch they are scored in.
    """

    def __init__(self, spec: ArchSpec, image_size: int, channels: int) -> None:
        super().__init__()
        if len(spec.critic_widths) != spec.l:
            raise ValueError(f"spec {spec.name}: {spec.l} critic convs but {len(spec.critic_widths)} widths")
        trunk, size = _conv_trunk(spec.critic_widths, channels, image_size, norm=False, sn=True)
        hidden: list[nn.Module] = [trunk, nn.Flatten()]
        flat = spec.critic_widths[-1] * size * size
        for _ in range(spec.m - 1):
            hidden += [spectral_norm(nn.Linear(flat, spec.hidden_linear)), nn.LeakyReLU(0.2), Dropout(0.2)]
            flat = spec.hidden_linear
        self.hidden = nn.Sequential(*hidden)
        self.logit = spectral_norm(nn.Linear(flat, 1))
        with torch.no_grad():
            probe = torch.zeros(1, channels, image_size, image_size)
            self.feature_shapes = [tuple(m.shape[1:]) for m in self.eval().feature_maps(probe)]
        self.train()

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every conv block and hidden linear layer; the last one is f_D."""
        # torch annotates Sequential.__getitem__ as Sequential | Module whatever the index: the first
        # block is _conv_trunk's Sequential and a slice is a Sequential
        trunk, rest = cast(nn.Sequential, self.hidden[0]), cast(nn.Sequential, self.hidden[1:])
        maps = _block_outputs(trunk, x)
        return maps + _block_outputs(rest, maps[-1])[-1:] if len(rest) > 1 else maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.hidden(x)).squeeze(1)


def _block_outputs(sequence: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Run `sequence`, keeping the output of each block (a block ends with its Dropout)."""
    outputs = []
    for layer in sequence:
        x = layer(x)
        if isinstance(layer, nn.Dropout):
            outputs.append(x)
    return outputs or [x]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
