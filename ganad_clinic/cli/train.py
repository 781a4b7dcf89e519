"""`ganad train`: train a model on the normal images of a dataset folder and write a bundle."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from ganad_clinic.cli.common import add_command, add_device_threads, apply_threads, load_images, rate
from ganad_clinic.errors import GanadError

if TYPE_CHECKING:
    from ganad_clinic.model.trainer import TrainConfig, TrainProgress

VAL_FRACTION = 0.2
MIN_NORMAL_IMAGES = 2
"""What `model.trainer.train` needs for training and for validation each (it refuses fewer with a
plain ValueError, which this command does not catch: said here first, on one line)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from ganad_clinic.model.conformal import CALIBRATION_FRACTION, MIN_CALIBRATION

    parser = add_command(
        subparsers, "train", arguments=add_arguments,
        help="train a model on the normal images of a dataset folder",
        description="Train on the normal images of DIR (ALL-IDB2 names or normal/ + anomalous/ folders). "
                    f"{VAL_FRACTION:.0%} of the normal images and all anomalous ones are held out for "
                    "validation: they choose the checkpoint and the score's form and never take part in a "
                    f"gradient step. Of the other normals, {CALIBRATION_FRACTION:.0%} (at least "
                    f"{MIN_CALIBRATION} when there are enough) are held out for calibration: they take part in "
                    "neither, and set the threshold for the target false-positive rate (split-conformal).")
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ganad_clinic.imaging.transforms import TRAIN_GEOMETRIES
    from ganad_clinic.model.config import DEFAULT_TARGET_FPR
    from ganad_clinic.model.methods import METHODS
    from ganad_clinic.model.networks import SPECS
    from ganad_clinic.model.trainer import CELL_LAMBDA, PAPER_LAMBDA, TrainConfig

    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--method", choices=METHODS, default="ganad",
                        help="ganad: the paper's model (default); anogan, efficient-gan, alad: the GAN baselines it "
                             "is compared with, each with its reference's loss and score weights")
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--image-size", type=int, default=TrainConfig.image_size)
    parser.add_argument("--channels", type=int, choices=(1, 3), default=TrainConfig.channels)
    parser.add_argument("--spec", choices=("auto", *sorted(SPECS)), default="auto",
                        help="architecture of Table 1 (auto: mnist for 1 channel <= 32 px, cifar10 for "
                             "3 channels <= 32 px, otherwise all)")
    parser.add_argument("--steps", type=int, help=f"step budget (default {TrainConfig.steps})")
    parser.add_argument("--epochs", type=int, help="train for this many epochs instead of a step budget")
    parser.add_argument("--batch-size", type=int, help="default 16 for the ALL spec, 64 otherwise")
    parser.add_argument("--latent", type=int, help=f"latent size (default {TrainConfig.latent} for ALL, 100 otherwise; "
                                                   "the paper recipe uses 200 for ALL)")
    parser.add_argument("--width", type=float, help=f"multiplies every layer width (default {TrainConfig.width} for "
                                                    "ALL; 1.0 gives Table 5's sizes)")
    parser.add_argument("--lambda", dest="lam", type=float,
                        help=f"weight of the critic-feature term (default {CELL_LAMBDA} for the ALL spec, "
                             f"{PAPER_LAMBDA} otherwise; the baselines' own)")
    parser.add_argument("--beta", type=float,
                        help=f"weight of the latent term (default {TrainConfig.beta}; 0 for baselines)")
    parser.add_argument("--gan", choices=("rsgan", "sgan"), help="GAN loss (default rsgan; sgan for the baselines)")
    parser.add_argument("--geometry", choices=TRAIN_GEOMETRIES,
                        help="training augmentation of geometry: cells (flips, right-angle turns and random crops; "
                             "default for the ALL spec), shift (random crops only), none (default for small, upright "
                             "images such as digits)")
    parser.add_argument("--search-steps", type=int,
                        help=f"AnoGAN: z-search steps per scored batch (default {TrainConfig.search_steps}, "
                             "as in Table 5)")
    parser.add_argument("--recipe", choices=("default", "paper"), default="default",
                        help="paper: the paper's recipe exactly (no augmentation, no EMA, raw score sums)")
    parser.add_argument("--target-fpr", type=rate, default=DEFAULT_TARGET_FPR, metavar="RATE",
                        help=f"the share of normal slides the model may flag (default {DEFAULT_TARGET_FPR:g}); the "
                             "lab can change it later without retraining (ganad operating-point set)")
    parser.add_argument("--seed", type=int, default=0)
    add_device_threads(parser)


def config_from_args(args: argparse.Namespace, n_train: int) -> TrainConfig:
    from ganad_clinic.model.trainer import paper_recipe, recommended_config

    given = {name: value for name, value in (("batch_size", args.batch_size), ("latent", args.latent),
                                              ("width", args.width), ("steps", args.steps),
                                              ("search_steps", args.search_steps), ("gan", args.gan),
                                              ("geometry", args.geometry)) if value}
    given.update({name: value for name, value in (("lam", args.lam), ("beta", args.beta)) if value is not None})
    config = recommended_config(args.image_size, args.channels, args.spec, args.method, seed=args.seed,
                                device=args.device, target_fpr=args.target_fpr, **given)
    if args.recipe == "paper":
        config = paper_recipe(config)
    if args.epochs:
        config = replace(config, steps=args.epochs * max(1, n_train // min(config.batch_size, n_train)))
    return config


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ganad_clinic.imaging.datasets import load_dataset, split_dataset
    from ganad_clinic.model.bundle import save_bundle, threshold_rule, trained_on
    from ganad_clinic.model.conformal import percent, split_calibration
    from ganad_clinic.model.inference import CROP_SIZE_KEY
    from ganad_clinic.model.trainer import train

    apply_threads(args)
    try:
        dataset = load_dataset(args.data)
        split = split_dataset(dataset, train=1 - VAL_FRACTION, val=VAL_FRACTION, test=0.0, seed=args.seed)
        train_samples, calibration_samples = split_calibration(split.train, seed=args.seed)
        train_images, val_images = load_images(train_samples), load_images(split.val)
        calibration_images = load_images(calibration_samples)
    except GanadError as error:
        print(f"ganad train: {error}", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args, len(train_images))
    except ValueError as error:  # the options do not make a configuration (model/ raises plain ValueErrors)
        print(f"ganad train: {error}", file=sys.stderr)
        return 2
    val_labels = [sample.label for sample in split.val]
    if min(len(train_images), val_labels.count(0)) < MIN_NORMAL_IMAGES or not calibration_images:
        print(f"ganad train: {args.data} gives {len(train_images)} normal images for training, "
              f"{val_labels.count(0)} for validation and {len(calibration_images)} for calibration; training "
              f"needs at least {MIN_NORMAL_IMAGES} for each of the first two and one to calibrate",
              file=sys.stderr)
        return 2
    print(f"training on {len(train_images)} normal images of {args.data}; validating on "
          f"{val_labels.count(0)} normal + {val_labels.count(1)} anomalous; calibrating on "
          f"{len(calibration_images)} normal for a false-positive rate of {percent(config.target_fpr)}; method "
          f"{config.method}, {config.steps} steps, spec {config.spec}, {config.image_size} px, recipe {config.recipe}")
    bar = tqdm(total=config.steps, unit="step", file=sys.stderr)

    def report(progress: TrainProgress) -> None:
        bar.update(progress.step - bar.n)
        figure = "-" if progress.validation is None else f"{progress.validation:.3f}"
        losses = " ".join(f"{name} {value:.4f}" for name, value in progress.losses.items())
        bar.set_postfix_str(f"epoch {progress.epoch} {losses} {progress.validation_name} {figure}")

    try:
        result = train(config, train_images, val_images, val_labels, calibration_images, progress=report)
    except KeyboardInterrupt:
        bar.close()
        print("ganad train: cancelled; no bundle was written", file=sys.stderr)
        return 130
    except GanadError as error:
        bar.close()
        print(f"ganad train: {error}", file=sys.stderr)
        return 2
    bar.close()
    training = {"config": config.to_dict(), "data": str(args.data), "n_train": len(train_images),
                CROP_SIZE_KEY: max(train_images[0].shape[:2]),
                "n_val_normal": val_labels.count(0), "n_val_anomalous": val_labels.count(1),
                "n_calibration": len(calibration_images),
                **result.record(),
                **trained_on(*([sample.path for sample in part] for part in (train_samples, split.val,
                                                                                  calibration_samples)))}
    path = save_bundle(args.out, result.model, result.score_config, result.operating_point, training=training,
                       validation_metrics=result.validation_metrics,
                       changelog=f"trained on {len(train_images)} normal images of {args.data}")
    metrics = result.validation_metrics
    point = result.operating_point
    print(f"wrote {path}: target false-positive rate {percent(point.target_fpr)}, one-cell threshold "
          f"{point.threshold():.4g} ({threshold_rule(point, with_shortfall=False)}); validation AUC "
          f"{metrics['auc']:.4f}, sensitivity {metrics['sensitivity']:.3f}, specificity "
          f"{metrics['specificity']:.3f}; {result.seconds:.0f} s")
    shortfall = point.shortfall()
    if shortfall is not None:
        print(f"ganad train: warning: {shortfall}; give more normal images to keep the target", file=sys.stderr)
    return 0
