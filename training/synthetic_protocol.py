"""The paper's ALL protocol on the synthetic cell set: train on 100 normal crops, validate on 20
(5 normal + 15 blast), test on 140; several seeds; raw vs normalised score and the λ sweep on the
same models; the classical anchors (PCA, nearest neighbour, one-class SVM, Isolation Forest) on the same split.

    python training/synthetic_protocol.py --seeds 0 1 2 [--steps N] [--width W] [--threads 2]
    python training/synthetic_protocol.py --anchors-only     # the anchors alone, in seconds

Prints one line per seed and the mean ± std; `--json FILE` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.imaging.datasets import load_dataset, paper_split
from ganad_clinic.imaging.io import read_image
from ganad_clinic.imaging.synthetic import write_dataset
from ganad_clinic.model.scoring import combine_arrays, compute_terms, roc_auc, screening_metrics
from ganad_clinic.model.trainer import TrainConfig, paper_recipe, prepare_eval_batch, recommended_config, train

from anchors import anchor_aucs
from run import LAMBDA_SWEEP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--width", type=float, default=TrainConfig.width)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--recipe", choices=("default", "paper"), default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--anchors-only", action="store_true", help="skip the model; the classical anchors only")
    args = parser.parse_args()
    configure_torch(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        write_dataset(folder, 130, 130, seed=args.data_seed)
        dataset = load_dataset(folder)
        rows = []
        for seed in args.seeds:
            split = paper_split(dataset, seed=seed)
            config = recommended_config(args.image_size, steps=args.steps, width=args.width, seed=seed)
            if args.recipe == "paper":
                config = paper_recipe(config)
            load = lambda samples: [read_image(s.path) for s in samples]  # noqa: E731
            test_labels = np.array([s.label for s in split.test])
            x_test = prepare_eval_batch(load(split.test), config)
            anchor_row = anchor_aucs(prepare_eval_batch(load(split.train), config), x_test, test_labels, seed)
            if args.anchors_only:
                rows.append({"seed": seed, **anchor_row})
                print(json.dumps({k: round(v, 4) for k, v in rows[-1].items()}), flush=True)
                continue
            started = time.monotonic()
            # AUCs are compared; the validation normals stand in for calibration normals (not a calibrated threshold)
            result = train(config, load(split.train), load(split.val), [s.label for s in split.val],
                           load([s for s in split.val if s.label == 0]))
            seconds = time.monotonic() - started
            terms, _ = compute_terms(result.model, x_test, result.score_config.feature_layers)
            scores = combine_arrays(terms, result.score_config)
            metrics = screening_metrics(scores, test_labels, scores > result.operating_point.threshold())
            other = "raw" if result.score_config.mode == "normalised" else "normalised"
            metrics[f"auc_{other}"] = roc_auc(combine_arrays(terms, replace(result.score_config, mode=other)),
                                              test_labels)
            for name, values in terms.items():
                metrics[f"auc_{name}_only"] = roc_auc(values, test_labels)
            for lam in LAMBDA_SWEEP:
                metrics[f"auc_lam_{lam:g}"] = roc_auc(combine_arrays(terms, replace(result.score_config, lam=lam)),
                                                      test_labels)
            metrics.update(seed=seed, seconds=seconds, best_step=result.best_step,
                           val_auc=result.validation_metrics["auc"], **result.model.residual_units.form(), **anchor_row)
            rows.append(metrics)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}), flush=True)
    for name in ("pca", "knn", "ocsvm", "iforest"):
        values = np.array([row[f"{name}_auc"] for row in rows])
        print(f"{name}: AUC {values.mean():.4f} ± {values.std():.4f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.anchors_only:
        aucs = np.array([row["auc"] for row in rows])
        print(f"{args.recipe} recipe, size {args.image_size}, width {args.width}, {args.steps} steps, "
              f"{args.threads} threads: AUC {aucs.mean():.4f} ± {aucs.std():.4f} over seeds {args.seeds}")


if __name__ == "__main__":
    main()
