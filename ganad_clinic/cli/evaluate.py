"""`ganad evaluate`: screening metrics of a bundle on a labelled dataset, at the bundle's threshold."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ganad_clinic.cli.common import add_device_threads, apply_threads, load_images
from ganad_clinic.imaging.datasets import DatasetError, load_dataset
from ganad_clinic.imaging.io import ImageReadError
from ganad_clinic.model.bundle import BundleError, load_bundle
from ganad_clinic.model.inference import Scorer
from ganad_clinic.model.scoring import screening_metrics

KEYS = ("auc", "sensitivity", "specificity", "f1", "accuracy", "threshold", "n_normal", "n_anomalous")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="AUC, sensitivity, specificity, F1 and accuracy on a dataset",
                                   description="Score every image of a labelled dataset folder and report "
                                               "the metrics at the bundle's threshold.")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="dataset folder (ALL-IDB2 names or normal/ + anomalous/)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_device_threads(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    try:
        bundle = load_bundle(args.bundle, device=args.device)
        dataset = load_dataset(args.data)
        images = load_images(dataset.samples)
    except (BundleError, DatasetError, ImageReadError) as error:
        print(f"ganad evaluate: {error}", file=sys.stderr)
        return 2
    results = Scorer(bundle).score_images(images)
    labels = np.array([sample.label for sample in dataset.samples])
    metrics = screening_metrics(np.array([r.score for r in results]), labels, bundle.threshold.value)
    if args.json:
        print(json.dumps({key: metrics[key] for key in KEYS}))
    else:
        print(f"{args.data}: {metrics['n_normal']} normal, {metrics['n_anomalous']} anomalous; "
              f"threshold {metrics['threshold']:.4g} ({bundle.threshold.rule})")
        for key in ("auc", "sensitivity", "specificity", "f1", "accuracy"):
            print(f"  {key:<12}{metrics[key]:.4f}")
    return 0
