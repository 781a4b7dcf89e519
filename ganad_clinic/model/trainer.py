"""The training loop of every method: its steps per batch, validation, best checkpoint, calibration.

Each method brings its networks, optimisers and training step (`protocol.DetectionMethod`, named in
`methods.METHODS`; the paper's three updates per batch are in `ganad.method`); the loop is shared.
For ~100 images the default recipe adds DiffAugment before the critic and scores with an
exponential moving average of E and G; `recipe="paper"` turns both off and uses the paper's raw
score sums. Training is bounded by a step budget, reports progress through a callback and stops
cleanly when its cancel flag is set.

Training changes no process-wide state: every random number comes from the run's own generators,
seeded from `config.seed` (initial weights, dropout masks, codes z, data order, DiffAugment, the
pixel transforms), and on CUDA it runs in mixed precision (`optim.OptimiserUpdate`). Deterministic
kernels on CUDA are the entry points' choice (`device.configure_determinism`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch
from monai.data import CacheDataset
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganad_clinic.imaging.transforms import eval_transform, train_transform
from ganad_clinic.model.augment import diff_augment
from ganad_clinic.model.config import (  # noqa: F401 (offered here)
    CELL_LAMBDA,
    PAPER_LAMBDA,
    RECIPES,
    StepInputs,
    TrainConfig,
)
from ganad_clinic.model.conformal import Calibration, OperatingPoint
from ganad_clinic.model.device import resolve_device
from ganad_clinic.model.ganad.calibration import FORM_CHOICE_MIN
from ganad_clinic.model.methods import (
    arch_of,
    build_model,
    check_config,
    method_for,
    method_options,
)
from ganad_clinic.model.networks import attach_dropout_generator
from ganad_clinic.model.optim import OptimiserUpdate
from ganad_clinic.model.protocol import DetectionNetworks
from ganad_clinic.model.pseudo_anomalies import pseudo_anomalies
from ganad_clinic.model.scoring import (
    ScoreConfig,
    combine_arrays,
    compute_terms,
    fit_pixel_reference,
    fit_term_stats,
    roc_auc,
    screening_metrics,
)

STATS_IMAGES = 512  # training normals, evenly spaced, that fit the score's statistics
WEIGHT_CHOICES = tuple((lam, beta) for lam in (0.0, 0.2, 0.5, 0.8, 1.0) for beta in (0.0, 1.0))
"""The (λ, β) pairs a run with `choose_weights` picks from on pseudo-anomalies (ties: its own)."""


def recommended_config(image_size: int = 64, channels: int = 3, spec: str = "auto", method: str = "ganad",
                       **overrides) -> TrainConfig:
    """The defaults users get: the paper's batch sizes; widths and latent sizes that train well in
    minutes on two CPU cores; flips and turns for cell crops only (small images are taken to be
    upright, like digits); λ CELL_LAMBDA for cell crops, the paper's PAPER_LAMBDA otherwise; a
    baseline's own loss and score weights. spec "auto": mnist for 1 channel <= 32 px, cifar10 for
    3 channels <= 32 px, otherwise all."""
    if spec == "auto":
        spec = "all" if image_size > 32 else ("mnist" if channels == 1 else "cifar10")
    small = spec != "all"
    values: dict = dict(spec=spec, image_size=image_size, channels=channels, batch_size=64 if small else 16,
                        latent=100 if small else TrainConfig.latent,
                        width=0.5 if small else TrainConfig.width, geometry="none" if small else "cells",
                        lam=PAPER_LAMBDA if small else CELL_LAMBDA, method=method)
    values.update(method_for(method).train_defaults)
    values.update(overrides)
    return check_config(TrainConfig(**values))


def paper_recipe(config: TrainConfig) -> TrainConfig:
    """The paper's recipe exactly: Table 5's widths, latent 200 (ALL) or 100, λ 0.8, β 1, AdamW at 1e-4 for
    both, no augmentation of the critic's input, no EMA, raw score sums of D's last hidden layer
    and E's output, D trained on G(z) only, the last weights rather than the best checkpoint, and
    its own λ and β rather than chosen ones."""
    if config.method != "ganad":
        raise ValueError(f"the paper recipe is the paper's own model's; {config.method} has its reference's settings")
    return check_config(replace(config, recipe="paper", width=1.0, latent=200 if config.spec == "all" else 100,
                                lam=PAPER_LAMBDA, beta=1.0, lr=1e-4, lr_ae=1e-4, diff_augment=(), ema_decay=None,
                                score_mode="raw", select_best=False, choose_weights=False, feature_layers="last",
                                critic_sees_reconstructions=False))


@dataclass
class TrainProgress:
    step: int
    total_steps: int
    epoch: int
    losses: dict[str, float]
    validation: float | None  # the latest validation figure
    validation_name: str  # "auc" (confirmed anomalies) or "pseudo-anomaly auc" (normals only)
    seconds_left: float


@dataclass
class TrainResult:
    model: DetectionNetworks  # in eval mode, on the CPU, with the weights that score
    score_config: ScoreConfig
    operating_point: OperatingPoint  # the calibration normals' scores at the config's target rate
    validation_metrics: dict[str, float | int]
    history: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    seconds: float = 0.0
    choices: dict[str, object] = field(default_factory=dict)  # what the choice set chose, and on what

    def record(self) -> dict[str, object]:
        """What a bundle's training metadata keeps of the run: its time, the checkpoint it scores
        with and what the choice set chose."""
        return {"seconds": round(self.seconds, 1), "best_step": self.best_step, "choices": self.choices}


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class TrainingCancelled(Exception):
    """Raised when the cancel flag is set; nothing has been written."""


def prepare_eval_batch(images: Sequence[np.ndarray], config: TrainConfig) -> torch.Tensor:
    return eval_transform(config.image_size, config.channels).batch(images)


def choice_set(x_val: torch.Tensor, labels: np.ndarray, seed: int) -> tuple[torch.Tensor, np.ndarray, str]:
    """The images training chooses with, their labels and the name of the figure they give: the
    validation images when they hold confirmed anomalies; else the validation normals beside
    pseudo-anomalies made of them (model.pseudo_anomalies), so that a lab with normal samples only
    still chooses by how well anomalies are told apart, not by how tight the normals' scores are."""
    if (labels == 1).any():
        return x_val, labels, "auc"
    normals = x_val[torch.as_tensor(labels == 0)]
    made = pseudo_anomalies(normals, seed)
    return (torch.cat([normals, made]), np.concatenate([np.zeros(len(normals)), np.ones(len(made))]).astype(np.int64),
            "pseudo-anomaly auc")


def train(config: TrainConfig, train_images: Sequence[np.ndarray], val_images: Sequence[np.ndarray],
          val_labels: Sequence[int], calibration_images: Sequence[np.ndarray],
          progress: Callable[[TrainProgress], None] | None = None, cancel: CancelFlag | None = None) -> TrainResult:
    """Train on normal images only; the choice set (`choice_set`: the validation images, or the
    validation normals and pseudo-anomalies made of them) chooses the checkpoint, the score's form
    and, on pseudo-anomalies, λ and β (`calibrate`); the calibration normals, which take part in none of
    it, set the threshold for `config.target_fpr` (model.conformal). The validation normals alone
    set the heat maps' reference. Images are HxWx3 float arrays in [0, 1]."""
    if len(train_images) < 2:
        raise ValueError(f"training needs at least 2 normal images, got {len(train_images)}")
    if len(calibration_images) < 1:
        raise ValueError("calibration needs at least one normal image that takes no part in training or validation")
    val_labels_np = np.asarray(val_labels, dtype=np.int64)
    if (val_labels_np == 0).sum() < 2:
        raise ValueError("validation needs at least 2 normal images (the heat-map reference and the threshold)")
    started = time.monotonic()
    check_config(config)
    device = resolve_device(config.device)
    method = method_for(config.method)

    # One stream for the weights and then the dropout masks (on the CPU the one the global generator
    # gave before: the same weights per seed), one each for DiffAugment, the codes z and the data order.
    model_rng = torch.Generator()
    model = build_model(config.method, arch_of(config), config.image_size, config.channels, config.latent,
                        method_options(config), seed=config.seed, continue_with=model_rng).to(device)
    if device.type != "cpu":
        model_rng = torch.Generator(device).manual_seed(config.seed)
    scorer = copy.deepcopy(model).eval()
    optimizers = method.configure_optimizers(model, config)
    ema = None
    if config.ema_decay is not None and method.ema_parts:
        ema = {name: AveragedModel(getattr(model, name), multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                                   use_buffers=True) for name in method.ema_parts}
    attach_dropout_generator(model, model_rng)
    augment_rng = torch.Generator().manual_seed(config.seed)
    latent_rng = torch.Generator().manual_seed(config.seed + 1)
    order_rng = torch.Generator().manual_seed(config.seed + 2)
    inputs = StepInputs(config, lambda x: diff_augment(x, config.diff_augment, generator=augment_rng), latent_rng,
                        OptimiserUpdate(device))

    transform = train_transform(config.image_size, config.channels, geometry=config.geometry)
    transform.set_random_state(seed=config.seed)
    dataset = CacheDataset(list(train_images), transform=transform, progress=False)
    x_val = prepare_eval_batch(val_images, config)
    x_choice, choice_labels, validation_name = choice_set(x_val, val_labels_np, config.seed)
    x_train = _statistics_sample(prepare_eval_batch(train_images, config))

    batch_size = min(config.batch_size, len(dataset))
    steps_per_epoch = max(1, len(dataset) // batch_size)
    history: list[dict[str, float]] = []
    best_figure, best_state, best_step = -math.inf, None, 0
    last_validation: float | None = None
    order = torch.randperm(len(dataset), generator=order_rng)
    for step in range(1, config.steps + 1):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("training was cancelled; no bundle was written")
        position = (step - 1) % steps_per_epoch
        if position == 0 and step > 1:
            order = torch.randperm(len(dataset), generator=order_rng)
        indices = order[position * batch_size:(position + 1) * batch_size].tolist()
        x = torch.stack([torch.as_tensor(dataset[i]) for i in indices]).float().to(device)
        model.train()
        step_losses = method.training_step(model, x, optimizers, inputs)
        if ema is not None:
            for name, averaged in ema.items():
                averaged.update_parameters(getattr(model, name))

        record = {"step": step, **step_losses}
        if config.select_best and (step % config.eval_every == 0 or step == config.steps):
            state = _scoring_state(model, ema)
            scorer.load_state_dict(state)
            last_validation = _validation_figure(scorer, x_train, x_choice, choice_labels, config)
            record["validation"] = last_validation
            if step >= config.steps // 3 and last_validation > best_figure:
                best_figure, best_state, best_step = last_validation, state, step
        history.append(record)
        if progress is not None:
            elapsed = time.monotonic() - started
            progress(TrainProgress(step, config.steps, (step - 1) // steps_per_epoch + 1, step_losses,
                                   last_validation, validation_name, elapsed / step * (config.steps - step)))

    scorer.load_state_dict(best_state if best_state is not None else _scoring_state(model, ema))
    scorer = scorer.cpu().eval()
    score_config, operating_point, metrics, choices = calibrate(
        scorer, x_train, x_val, val_labels_np, prepare_eval_batch(calibration_images, config), config,
        pseudo=None if validation_name == "auc" else (x_choice, choice_labels))
    choices = {"figure": validation_name, "checkpoint_step": best_step or config.steps,
               "checkpoint_figure": None if best_state is None else best_figure, **choices}
    return TrainResult(scorer, score_config, operating_point, metrics, history, best_step or config.steps,
                       time.monotonic() - started, choices)


def _statistics_sample(x_train: torch.Tensor) -> torch.Tensor:
    """At most STATS_IMAGES training normals, evenly spaced, for the score's statistics."""
    if len(x_train) <= STATS_IMAGES:
        return x_train
    return x_train[torch.linspace(0, len(x_train) - 1, STATS_IMAGES).round().long()]


def _scoring_state(model: DetectionNetworks, ema: dict[str, AveragedModel] | None) -> dict[str, torch.Tensor]:
    """A detached copy of the weights that score: the EMA of the averaged parts (if any), the rest as trained."""
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    if ema is not None:
        for name, averaged in ema.items():
            for key, value in averaged.module.state_dict().items():
                state[f"{name}.{key}"] = value.detach().clone()
    return state


def _score_config(model: DetectionNetworks, x_train: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray,
                  config: TrainConfig) -> ScoreConfig:
    """The score of the model as it stands: residual units and term statistics from the training
    normals (100 images give steadier spreads than the 5 normals of the paper's validation split),
    the units' form chosen on validation when it is large enough (`fit_residual_units`)."""
    score_config = ScoreConfig(config.lam, config.beta, config.score_mode, config.feature_layers)
    method_for(config.method).fit_terms(model, x_train, x_val, labels, score_config)
    if config.score_mode == "raw":  # no statistics needed (and AnoGAN would search for every training image)
        return score_config
    train_terms, _ = compute_terms(model, x_train, config.feature_layers)
    return replace(score_config, term_stats=fit_term_stats(train_terms))


def _validation_figure(model: DetectionNetworks, x_train: torch.Tensor, x_choice: torch.Tensor,
                       labels: np.ndarray, config: TrainConfig) -> float:
    """Higher is better: the AUC on the choice set."""
    score_config = _score_config(model, x_train, x_choice, labels, config)
    terms, _ = compute_terms(model, x_choice, config.feature_layers)
    return roc_auc(combine_arrays(terms, score_config), labels)


def choose_weights(terms: dict[str, np.ndarray], labels: np.ndarray,
                   score_config: ScoreConfig) -> tuple[ScoreConfig, float]:
    """The (λ, β) of WEIGHT_CHOICES whose score has the best AUC on the choice set's terms, ties
    going to `score_config`'s own pair, and that AUC."""
    own = (score_config.lam, score_config.beta)
    candidates = [own, *(pair for pair in WEIGHT_CHOICES if pair != own)]
    aucs = [roc_auc(combine_arrays(terms, replace(score_config, lam=lam, beta=beta)), labels)
            for lam, beta in candidates]
    best = int(np.argmax(aucs))
    lam, beta = candidates[best]
    return replace(score_config, lam=lam, beta=beta), aucs[best]


def calibrate(model: DetectionNetworks, x_train: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray,
              x_calibration: torch.Tensor, config: TrainConfig,
              pseudo: tuple[torch.Tensor, np.ndarray] | None = None,
              ) -> tuple[ScoreConfig, OperatingPoint, dict[str, float | int], dict[str, object]]:
    """Fit the residual units and term statistics on the training normals, the score's form on the
    choice set when it holds FORM_CHOICE_MIN images of each class, and the heat-map reference on
    the validation normals; score the calibration normals for the operating point; measure
    validation at its one-cell threshold. Also returns what was chosen, for the record.

    The choice set is `pseudo` (the validation normals and pseudo-anomalies, `choice_set`) when
    given, else the validation images. λ and β are chosen (`config.choose_weights`) on
    pseudo-anomalies only: a lab's confirmed anomalies keep the configured weights, as measured on
    the paper's splits, and serve the acceptance check."""
    x_choice, choice_labels = pseudo if pseudo is not None else (x_val, labels)
    score_config = _score_config(model, x_train, x_choice, choice_labels, config)
    units = getattr(model, "residual_units", None)  # the paper's model's all-layer terms have a form
    choices: dict[str, object] = {"form": None if units is None else units.form()}
    enough = min((choice_labels == label).sum() for label in (0, 1)) >= FORM_CHOICE_MIN
    if config.choose_weights and enough and pseudo is not None:
        choice_terms, _ = compute_terms(model, x_choice, config.feature_layers)
        score_config, figure = choose_weights(choice_terms, choice_labels, score_config)
        choices.update(lam=score_config.lam, beta=score_config.beta, weights_figure=figure)
    terms, residuals = compute_terms(model, x_val, config.feature_layers)
    scores = combine_arrays(terms, score_config)
    score_config = replace(score_config, pixel_reference=fit_pixel_reference(residuals[labels == 0]))
    calibration_terms, _ = compute_terms(model, x_calibration, config.feature_layers)
    calibration = Calibration.of(combine_arrays(calibration_terms, score_config))
    operating_point = OperatingPoint(config.target_fpr, calibration)
    threshold = operating_point.threshold()
    metrics = screening_metrics(scores, labels, scores > threshold)
    return score_config, operating_point, {**metrics, "threshold": threshold, "n_calibration": calibration.n}, choices
