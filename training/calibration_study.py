"""Does the operating point keep its promise? Issue 22's measurements, on synthetic data of seeds no
choice was made on (the project chose on data seeds 0, 1 and 4049).

    nice -n 10 python training/calibration_study.py --threads 1 [--quick] [--out training/results/calibration.json]

A. Crops. `ganad synth` writes 120 normal crops and no blasts (seed 7001) and `ganad train` trains
   on them with its defaults, holding out its own validation and calibration normals. On fresh
   crops of seed 7002 (300 normal, 130 blast) scored by `Inferencer`: the observed false-positive
   rate with its 95 % Clopper-Pearson interval, against what split-conformal calibration promises
   (given the calibration, a normal crop is flagged with probability Beta(n + 1 - k, k), k the rank
   of the threshold; over 300 crops the count is beta-binomial), and the sensitivity.
B. Fields. 40 normal fields (no blast) and 40 fields with at least one blast (each cell a blast
   with probability 0.5, redrawn until one is), seed 7003, each scored as the service scores it
   (`Inferencer(bundle, field_scale=FIELD_SCALE)`: one tile per white cell, Bonferroni over the
   cells), by three bundles with the same weights: A's (its ~24 calibration crops cannot resolve
   0.05 / m, so it keeps a weaker rate, said per field), the same model calibrated on 120 fresh
   normal crops of the training seed, and calibrated on the cell tiles of 60 normal fields of the
   training seed (a lab's normal slides). Calibration takes no part in training, so recalibrating
   the trained weights is what `model.trainer.train` would give with those calibration images.

Writes one JSON object (`--out`) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import beta, betabinom
from sklearn.metrics import roc_auc_score

from ganad_clinic.cli.common import configure_torch, load_images
from ganad_clinic.cli.train import VAL_FRACTION
from ganad_clinic.imaging.datasets import load_dataset, split_dataset
from ganad_clinic.imaging.synthetic import FIELD_SCALE, crop_rng, draw_field, field_rng, generate_cell
from ganad_clinic.model.bundle import Bundle, load_bundle, save_bundle, threshold_rule
from ganad_clinic.model.conformal import Calibration, OperatingPoint, split_calibration
from ganad_clinic.model.inference import Inferencer, SlideResult

try:
    from training.cell_pointing import holds
    from training.field_screening import drawn_fields
except ModuleNotFoundError:  # run as a script: `python training/calibration_study.py`, its folder first on the path
    from cell_pointing import holds  # type: ignore[no-redef]
    from field_screening import drawn_fields  # type: ignore[no-redef]

TRAIN_SEED = 7001  # training crops, the extra calibration crops and the calibration fields
CROP_TEST_SEED = 7002
FIELD_TEST_SEED = 7003
TRAIN_MODEL_SEED = 0  # `ganad train`'s default --seed (its split and its weights)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
SENSITIVITY_TARGET = 0.9


@dataclass(frozen=True)
class Sizes:
    train_normals: int
    test_normals: int
    test_blasts: int
    fields: int  # of each kind
    calibration_crops: int
    calibration_fields: int
    steps: int | None  # None: `ganad train`'s default


FULL = Sizes(120, 300, 130, 40, 120, 60, None)
QUICK = Sizes(120, 40, 20, 4, 30, 6, 20)


def cpu_features() -> dict[str, bool]:
    """Which of the vector extensions torch's CPU kernels use this machine has (/proc/cpuinfo flags)."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {flag: flag in flags for flag in CPU_FLAGS}


def clopper_pearson(count: int, total: int, confidence: float = 0.95) -> list[float]:
    tail = (1 - confidence) / 2
    low = 0.0 if count == 0 else float(beta.ppf(tail, count, total - count + 1))
    high = 1.0 if count == total else float(beta.ppf(1 - tail, count + 1, total - count))
    return [low, high]


def rate(flags: Sequence[bool]) -> dict:
    count, total = int(sum(flags)), len(flags)
    return {"flagged": count, "of": total, "rate": count / total, "ci95": clopper_pearson(count, total)}


def conformal_promise(calibration: Calibration, level: float, tests: int) -> dict:
    """What split-conformal calibration implies for the false-positive rate of one cell at `level`:
    the threshold is the k-th smallest of n scores, so given the calibration a normal cell exceeds
    it with probability Beta(n + 1 - k, k); over `tests` cells the flagged share is beta-binomial."""
    n = calibration.n
    k = n - calibration.allowed(level)
    a, b = n + 1 - k, k
    counts = betabinom(tests, a, b)
    return {"n": n, "k": k, "beta": [a, b], "mean": a / (a + b),
            "fpr_given_calibration_95": [float(beta.ppf(0.025, a, b)), float(beta.ppf(0.975, a, b))],
            f"observed_rate_95_of_{tests}": [float(counts.ppf(0.025)) / tests, float(counts.ppf(0.975)) / tests]}


def ganad(*arguments: str) -> list[str]:
    """Run a `ganad` command in this interpreter: the lines it printed and its warnings (not its progress bar)."""
    done = subprocess.run([sys.executable, "-m", "ganad_clinic", *arguments], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ganad {' '.join(arguments)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.splitlines() + [line for line in done.stderr.splitlines() if "warning" in line]


def crops(seed: int, blast: bool, count: int, start: int = 0) -> list[np.ndarray]:
    return [generate_cell(crop_rng(seed, blast, index), blast) for index in range(start, start + count)]


def recalibrated(bundle: Bundle, scores: Sequence[float], path: Path, source: str) -> Bundle:
    """The bundle's weights and score with a new calibration, written and read back as a bundle."""
    point = OperatingPoint(bundle.target_fpr, Calibration.of(scores))
    training = {**bundle.metadata["ganad"]["training"], "n_calibration": point.calibration.n,
                "calibrated_on": source}
    save_bundle(path, bundle.model, bundle.score_config, point, training=training,
                changelog=f"recalibrated on {source}")
    return load_bundle(path)


def bundle_figures(bundle: Bundle) -> dict:
    point = bundle.operating_point()
    return {"path": str(bundle.path), "n_calibration": point.calibration.n, "target_fpr": point.target_fpr,
            "rule": threshold_rule(point), "one_cell_threshold": point.threshold(),
            "recorded": {key: value for key, value in bundle.metadata["ganad"]["calibration"].items()
                         if key != "scores"}}


def part_a(work: Path, sizes: Sizes, threads: int) -> tuple[Bundle, dict]:
    started = time.perf_counter()
    data, bundle_path = work / "train-crops", work / "bundle-crops"
    synth = ["synth", "--out", str(data), "--normal", str(sizes.train_normals), "--blast", "0",
             "--seed", str(TRAIN_SEED)]
    train = ["train", "--data", str(data), "--out", str(bundle_path), "--threads", str(threads),
             *(["--steps", str(sizes.steps)] if sizes.steps else [])]
    ganad(*synth)
    train_output = ganad(*train)
    trained = time.perf_counter()
    bundle = load_bundle(bundle_path)
    inferencer = Inferencer(bundle)

    # The calibration normals `ganad train` held out, found again by its own split, scored by the
    # Inferencer: the trainer's calibration scores and the service's scores must agree.
    split = split_dataset(load_dataset(data), train=1 - VAL_FRACTION, val=VAL_FRACTION, test=0.0,
                          seed=TRAIN_MODEL_SEED)
    held = load_images(split_calibration(split.train, seed=TRAIN_MODEL_SEED)[1])
    rescored = sorted(result.score for result in inferencer.score(held))
    agreement = float(np.max(np.abs(np.array(rescored) - np.array(bundle.calibration.scores))))

    normal = inferencer.score(crops(CROP_TEST_SEED, False, sizes.test_normals))
    blast = inferencer.score(crops(CROP_TEST_SEED, True, sizes.test_blasts))
    point = inferencer.operating_point
    fpr = rate([result.flagged for result in normal])
    promise = conformal_promise(point.calibration, point.cell_level(), sizes.test_normals)
    low, high = promise[f"observed_rate_95_of_{sizes.test_normals}"]
    scores = [result.score for result in normal + blast]
    figures = {
        "commands": [f"ganad {' '.join(synth)}", f"ganad {' '.join(train)}"],
        "train_output": train_output,
        "bundle": bundle_figures(bundle),
        "calibration_rescored_max_difference": agreement,
        "test_seed": CROP_TEST_SEED,
        "normal_crops": fpr,
        "conformal_promise": promise,
        "observed_inside_promise": low <= fpr["rate"] <= high,
        "fpr_within_target": fpr["ci95"][0] <= point.target_fpr,
        "blast_crops_sensitivity": rate([result.flagged for result in blast]),
        "crop_auc": float(roc_auc_score([0] * len(normal) + [1] * len(blast), scores)),
        "seconds_training": round(trained - started, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return bundle, figures


def calibration_bundles(bundle: Bundle, work: Path, sizes: Sizes) -> tuple[dict[str, Bundle], dict]:
    """A's bundle and the same model calibrated on more normal crops and on normal fields' cell tiles."""
    started = time.perf_counter()
    crop_scores = [result.score for result in Inferencer(bundle).score(
        crops(TRAIN_SEED, False, sizes.calibration_crops, start=sizes.train_normals))]
    field_inferencer = Inferencer(bundle, field_scale=FIELD_SCALE)
    tile_scores, tiles_per_field = [], []
    for index in range(sizes.calibration_fields):
        image, _ = draw_field(field_rng(TRAIN_SEED, index), blast_fraction=0.0)
        cells = field_inferencer.score([image])[0].cells
        tile_scores += [cell.score for cell in cells]
        tiles_per_field.append(len(cells))
    crop_source = (f"{sizes.calibration_crops} normal crops of seed {TRAIN_SEED} "
                   f"(indices {sizes.train_normals}-{sizes.train_normals + sizes.calibration_crops - 1})")
    field_source = (f"the {len(tile_scores)} white-cell tiles of {sizes.calibration_fields} normal fields of seed "
                    f"{TRAIN_SEED}, tiled as the service tiles them")
    bundles = {
        "crop_calibrated_trained": bundle,
        "crop_calibrated_more": recalibrated(bundle, crop_scores, work / "bundle-crops-more", crop_source),
        "field_tile_calibrated": recalibrated(bundle, tile_scores, work / "bundle-field-tiles", field_source),
    }
    return bundles, {"crops": crop_source, "field_tiles": field_source,
                     "calibration_tiles_per_field": dict(sorted(Counter(tiles_per_field).items())),
                     "seconds": round(time.perf_counter() - started, 1)}


def part_b(bundles: dict[str, Bundle], sizes: Sizes) -> dict:
    """Every test field scored by every bundle; the fields' flags, cell counts and AUCs."""
    started = time.perf_counter()
    inferencers = {name: Inferencer(bundle, field_scale=FIELD_SCALE) for name, bundle in bundles.items()}
    planner = next(iter(inferencers.values()))
    results: dict[str, list[SlideResult]] = {name: [] for name in bundles}
    labels, cell_scores, cell_labels, cell_counts = [], [], [], []
    for image, drawn, label in drawn_fields(sizes.fields, FIELD_TEST_SEED):
        plan = planner.plan(image)
        scored = {name: inferencer.score([image], [plan])[0] for name, inferencer in inferencers.items()}
        for name, result in scored.items():
            results[name].append(result)
        cells = result.cells  # the same tiles and scores under every calibration
        blasts = [(round(cell.col), round(cell.row)) for cell in drawn if cell.blast]
        cell_scores += [cell.score for cell in cells]
        cell_labels += [int(any(holds(cell.tile, x, y) for x, y in blasts)) for cell in cells]
        labels.append(label)
        cell_counts.append(len(cells))
    truth = np.array(labels)
    counts = np.array(cell_counts)
    slide_scores = [result.score for result in results["crop_calibrated_trained"]]
    figures: dict = {
        "test_seed": FIELD_TEST_SEED, "normal_fields": int((truth == 0).sum()), "blast_fields": int(truth.sum()),
        "cells_per_field": {kind: dict(sorted(Counter(counts[truth == value].tolist()).items()))
                            for kind, value in (("normal", 0), ("blast", 1))},
        "slide_auc_max_cell": float(roc_auc_score(truth, slide_scores)),
        "cell_auc": float(roc_auc_score(cell_labels, cell_scores)),
        "cells": {"normal": cell_labels.count(0), "blast": cell_labels.count(1)},
        "bundles": {},
    }
    for name, bundle in bundles.items():
        point = inferencers[name].operating_point
        flags = np.array([result.flagged for result in results[name]])
        normal_fpr, sensitivity = rate(flags[truth == 0].tolist()), rate(flags[truth == 1].tolist())
        figures["bundles"][name] = {
            **bundle_figures(bundle),
            "normal_fields_flagged": normal_fpr,
            "fpr_within_target": normal_fpr["ci95"][0] <= point.target_fpr,
            "blast_fields_flagged": sensitivity,
            "sensitivity_at_least_target": sensitivity["rate"] >= SENSITIVITY_TARGET,
            "kept_rate_mean_normal_fields": float(np.mean([r.decision.kept_rate
                                                           for r, t in zip(results[name], truth) if t == 0])),
            "per_cell_count": {int(m): {"kept_rate": point.kept_rate(int(m)), "cell_level": point.cell_level(int(m)),
                                        "threshold": point.threshold(int(m)), "shortfall": point.shortfall(int(m))}
                               for m in sorted(set(cell_counts))},
            "normal_field_flag_rate_by_cells": {int(m): rate(flags[(truth == 0) & (counts == m)].tolist())["rate"]
                                                for m in sorted(set(counts[truth == 0].tolist()))},
        }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def interval(figure: dict) -> str:
    low, high = figure["ci95"]
    return f"{figure['flagged']}/{figure['of']} = {figure['rate']:.3f} (95 % CI {low:.3f}-{high:.3f})"


def summary(result: dict) -> str:
    a, b = result["crops"], result["fields"]
    promise = a["conformal_promise"]
    low, high = promise[f"observed_rate_95_of_{a['normal_crops']['of']}"]
    lines = [f"A. {a['bundle']['rule']}",
             f"   normal crops flagged {interval(a['normal_crops'])}; conformal promise: mean "
             f"{promise['mean']:.3f}, observed share 95 % {low:.3f}-{high:.3f} -> "
             f"{'inside' if a['observed_inside_promise'] else 'OUTSIDE'}",
             f"   blast crops flagged {interval(a['blast_crops_sensitivity'])}; crop AUC {a['crop_auc']:.3f}",
             f"B. fields (cells per field {b['cells_per_field']}); slide AUC {b['slide_auc_max_cell']:.3f}, "
             f"cell AUC {b['cell_auc']:.3f}"]
    for name, figures in b["bundles"].items():
        lines.append(f"   {name} (n={figures['n_calibration']}): normal fields "
                     f"{interval(figures['normal_fields_flagged'])}, blast fields "
                     f"{interval(figures['blast_fields_flagged'])}, kept rate "
                     f"{figures['kept_rate_mean_normal_fields']:.3f}")
    lines.append(f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 training steps and few test images (a smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, here and in `ganad train`")
    parser.add_argument("--work", type=Path, help="keep the data and bundles in this folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="write the JSON object to this file")
    args = parser.parse_args()
    configure_torch(args.threads)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        bundle, crop_figures = part_a(work, sizes, args.threads)
        bundles, calibrations = calibration_bundles(bundle, work, sizes)
        result = {
            "command": " ".join(["python", *sys.argv]), "quick": args.quick, "threads": args.threads,
            "cpu_features": cpu_features(),
            "seeds": {"training_data": TRAIN_SEED, "test_crops": CROP_TEST_SEED, "test_fields": FIELD_TEST_SEED,
                      "ganad_train": TRAIN_MODEL_SEED},
            "sizes": sizes.__dict__, "crops": crop_figures, "calibrations": calibrations,
            "fields": part_b(bundles, sizes),
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(summary(result))


if __name__ == "__main__":
    main()
