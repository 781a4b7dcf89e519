"""`ganad evaluate`: screening metrics of a bundle on a labelled dataset, at the bundle's operating point.

Every file is scored as the screening service scores it (crops whole, fields one tile per white
cell), with one slide-level label per file, so crops and fields can be evaluated alike."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ganad_clinic.cli.common import add_device_threads, add_field_scale, apply_threads
from ganad_clinic.errors import GanadError

KEYS = ("auc", "sensitivity", "specificity", "f1", "accuracy", "target_fpr", "n_normal", "n_anomalous", "n_tiled")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="AUC, sensitivity, specificity, F1 and accuracy on a dataset",
                                   description="Score every image of a labelled dataset folder (crops or "
                                               "fields, one label per file) as the screening service does and "
                                               "report the metrics at the false-positive rate the bundle was "
                                               "trained for (each slide judged on its own cells).")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="dataset folder (ALL-IDB2 names or normal/ + anomalous/)")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object: the metrics and each file's score and flag")
    add_field_scale(parser)
    add_device_threads(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.imaging.datasets import load_dataset
    from ganad_clinic.imaging.io import MultiPageWarning
    from ganad_clinic.model.bundle import load_bundle, threshold_rule
    from ganad_clinic.model.conformal import percent
    from ganad_clinic.model.inference import Inferencer, evaluate_slides

    apply_threads(args)
    try:
        bundle = load_bundle(args.bundle, device=args.device)
        inferencer = Inferencer(bundle, args.field_scale)
        dataset = load_dataset(args.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MultiPageWarning)  # the first page is scored, as the service does
            evaluation = evaluate_slides(inferencer, [sample.path for sample in dataset.samples],
                                         [sample.label for sample in dataset.samples])
    except GanadError as error:
        print(f"ganad evaluate: {error}", file=sys.stderr)
        return 2
    metrics = evaluation.metrics
    if args.json:
        slides = [{"file": str(sample.path), "label": sample.label, "score": score, "flagged": flagged}
                  for sample, score, flagged in zip(dataset.samples, evaluation.scores, evaluation.flagged)]
        print(json.dumps({key: metrics[key] for key in KEYS} | {"slides": slides}))
    else:
        point = inferencer.operating_point
        print(f"{args.data}: {metrics['n_normal']} normal, {metrics['n_anomalous']} anomalous "
              f"({metrics['n_tiled']} tiled as fields); target false-positive rate {percent(point.target_fpr)}, "
              f"one-cell threshold {point.threshold():.4g} ({threshold_rule(point)})")
        for key in ("auc", "sensitivity", "specificity", "f1", "accuracy"):
            print(f"  {key:<12}{metrics[key]:.4f}")
    return 0
