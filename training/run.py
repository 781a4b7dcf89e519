"""Run a recipe's protocol for chosen methods and seeds, side by side, and write its tables.

    python training/run.py synthetic                      # training/recipes/synthetic.toml, every method, 3 seeds
    python training/run.py mnist --protocols 9v1 --classes 0 1 --seeds 0
    python training/run.py mnist --quick                  # CI-sized: few steps, two classes, one seed
    python training/run.py cifar10 --data-dir ~/data/cifar-10-batches-py
    python training/run.py synthetic --tables-only        # rebuild the tables from the runs kept so far

Methods: the GAN methods (ganad, anogan, efficient-gan, alad), trained with `ganad_clinic`'s own
trainer on the same split, and the classical anchors (pca, knn, ocsvm, iforest) on the same
eval-transformed pixels. With the recipe's `ablations`, the paper's model is also rescored with
β = 0, the other score form (raw / normalised) and λ in {0, 0.2, 0.5, 1}, and retrained with the
standard GAN loss ("ganad sgan"). Every finished run is appended to OUT/runs.jsonl at once, and runs
already there (same protocol, class, method and seed, whatever the settings then) are skipped, so
an interrupted run resumes where it stopped; delete the file after changing a recipe; the tables (Markdown,
CSV, ROC plots; see tables.py) are rewritten from all kept runs at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from ganad_clinic.cli.common import configure_torch
from ganad_clinic.model.methods import METHODS
from ganad_clinic.model.scoring import (
    ScoreConfig,
    combine_arrays,
    compute_terms,
    roc_auc,
    screening_metrics,
    sensitivity_at_specificity,
)
from ganad_clinic.model.trainer import TrainConfig, TrainResult, prepare_eval_batch, recommended_config, train

try:  # imported as part of the package (tests, `python -m training.run`)
    from training.anchors import anchors
    from training.protocols import Split, load_split, protocol_classes
    from training.tables import write_tables
except ModuleNotFoundError:  # run as a script: `python training/run.py`, its folder first on the path
    from anchors import anchors
    from protocols import Split, load_split, protocol_classes
    from tables import write_tables

HERE = Path(__file__).resolve().parent
ANCHORS = ("pca", "knn", "ocsvm", "iforest")
ALL_METHODS = (*METHODS, *ANCHORS)  # the order of the tables
RUN_SETTINGS = ("seeds", "classes", "max_test")  # recipe keys that shape the run, not a TrainConfig
LAMBDA_SWEEP = (0.0, 0.2, 0.5, 0.8, 1.0)  # rescored, but for the model's own λ
SPECIFICITIES = (0.95, 0.99)  # sensitivity is stated at these: a field shows five cells, so specificity per cell counts


def load_recipe(name: str, quick: bool) -> dict:
    """A recipe by name (training/recipes/NAME.toml) or path, with its [quick] section applied."""
    path = Path(name) if name.endswith(".toml") else HERE / "recipes" / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (HERE / "recipes").glob("*.toml"))
        raise SystemExit(f"run.py: no recipe {path} (known: {', '.join(known)})")
    recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    train_fields = dict(recipe.get("train", {}))
    if quick:
        for key, value in recipe.get("quick", {}).items():
            (recipe if key in RUN_SETTINGS else train_fields)[key] = value
    unknown = set(train_fields) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise SystemExit(f"run.py: {path}: unknown training settings {sorted(unknown)}")
    recipe["train"] = train_fields
    return recipe


def cap_test(split: Split, max_test: int | None, seed: int) -> Split:
    """At most `max_test` test images: half from each class where it has them, the rest from the
    larger class, drawn with `seed`; the same images for every method."""
    if max_test is None or len(split.test) <= max_test:
        return split
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(split.test_labels == label)) for label in (0, 1)]
    small = min(by_class, key=len)
    large = by_class[1] if small is by_class[0] else by_class[0]
    keep_small = small[:max_test // 2]
    chosen = np.sort(np.concatenate([keep_small, large[:max_test - len(keep_small)]]))
    return replace(split, test=[split.test[i] for i in chosen], test_labels=split.test_labels[chosen])


def gan_rows(method: str, split: Split, x_test: torch.Tensor, recipe: dict, seed: int,
             ablations: bool) -> list[dict]:
    """Train one GAN method on the split and score its test images; with ablations, the variants."""
    config = recommended_config(split.image_size, split.channels, method=method, seed=seed, **recipe["train"])
    rows = [_gan_row(method, config, split, x_test)]
    chosen = rows[0]["_result"].score_config
    if "lam" in rows[0]["_result"].choices:  # what choosing λ and β bought, on every run that chose
        rows.append(_scored(f"{method} own λ β", rows[0]["_terms"], replace(chosen, lam=config.lam, beta=config.beta),
                            None, split.test_labels, 0.0, rows[0]["best_step"], rescored=True))
    if ablations and method == "ganad":
        result, terms = rows[0].pop("_result"), rows[0].pop("_terms")
        variants = {"ganad β=0": replace(result.score_config, beta=0.0),
                    **{f"ganad λ={lam:g}": replace(result.score_config, lam=lam) for lam in LAMBDA_SWEEP
                       if lam != result.score_config.lam}}
        if result.score_config.mode == "normalised":  # raw runs fit no statistics to normalise with
            variants["ganad raw"] = replace(result.score_config, mode="raw")
        for name, score_config in variants.items():
            rows.append(_scored(name, terms, score_config, None, split.test_labels, 0.0, result.best_step,
                                rescored=True))
        rows.append(_gan_row("ganad sgan", replace(config, gan="sgan"), split, x_test))
    for row in rows:
        row.pop("_result", None)
        row.pop("_terms", None)
    return rows


def _gan_row(name: str, config: TrainConfig, split: Split, x_test: torch.Tensor) -> dict:
    started = time.monotonic()
    result: TrainResult = train(config, split.train, split.val, split.val_labels, split.calibration_normals)
    terms, _ = compute_terms(result.model, x_test, result.score_config.feature_layers)
    row = _scored(name, terms, result.score_config, result.operating_point.threshold(), split.test_labels,
                  time.monotonic() - started, result.best_step)
    row.update(val_auc=result.validation_metrics["auc"], calibrated=split.calibration is not None,
               choice=result.choices["figure"], _result=result, _terms=terms)
    if config.method == "ganad" and config.feature_layers == "all":
        row.update(result.model.residual_units.form())
    return row


def _scored(name: str, terms: dict[str, np.ndarray], score_config: ScoreConfig, threshold: float | None,
            labels: np.ndarray, seconds: float, best_step: int, rescored: bool = False) -> dict:
    scores = combine_arrays(terms, score_config)
    metrics = (screening_metrics(scores, labels, scores > threshold) if threshold is not None
               else {"auc": roc_auc(scores, labels)})
    row = {"method": name, **{k: metrics[k] for k in ("auc", "sensitivity", "specificity", "f1", "accuracy")
                              if k in metrics}, **specificity_columns(scores, labels),
           "lam": score_config.lam, "beta": score_config.beta, "seconds": round(seconds, 1), "best_step": best_step,
           "scores": scores.tolist(), "labels": labels.tolist()}
    if rescored:
        row["rescored"] = True
    return row


def anchor_row(name: str, x_train: torch.Tensor, x_test: torch.Tensor, labels: np.ndarray, seed: int) -> dict:
    started = time.monotonic()
    scores = anchors(seed)[name].fit(x_train).score(x_test)
    return {"method": name, "auc": roc_auc(scores, labels), **specificity_columns(scores, labels),
            "seconds": round(time.monotonic() - started, 1), "scores": np.asarray(scores).tolist(),
            "labels": labels.tolist()}


def specificity_columns(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Sensitivity at each of SPECIFICITIES, as `sens_at_95_spec`, `sens_at_99_spec`."""
    return {f"sens_at_{round(100 * level)}_spec": sensitivity_at_specificity(scores, labels, level)
            for level in SPECIFICITIES}


def _method_rank(name: str) -> int:
    """GAN methods then anchors in their registry order; an ablation variant right after its method."""
    base = name.split(" ")[0]
    return ALL_METHODS.index(base) if base in ALL_METHODS else len(ALL_METHODS)


def read_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe name in training/recipes/ (synthetic, all-idb2, mnist, cifar10, "
                                       "svhn) or a .toml path")
    parser.add_argument("--quick", action="store_true", help="the recipe's [quick] settings: minutes, for CI")
    parser.add_argument("--methods", nargs="+", choices=ALL_METHODS)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--protocols", nargs="+")
    parser.add_argument("--classes", type=int, nargs="+")
    parser.add_argument("--data-dir", type=Path, help="the dataset's files (all-idb2, cifar10, svhn)")
    parser.add_argument("--out", type=Path, help="default training/results/<recipe>[-quick]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--tables-only", action="store_true", help="rewrite the tables from OUT/runs.jsonl")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.quick)
    dataset = recipe["dataset"]
    out = args.out or HERE / "results" / (Path(args.recipe).stem + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.jsonl"
    command = " ".join(["python training/run.py", args.recipe, *(["--quick"] if args.quick else []),
                        *([f"--data-dir {args.data_dir}"] if args.data_dir else []), f"--threads {args.threads}"])
    if not args.tables_only:
        configure_torch(args.threads)
        run(recipe, args, runs_path)
    rows = read_runs(runs_path)
    if not rows:
        raise SystemExit(f"run.py: no runs in {runs_path}")
    rows.sort(key=lambda row: _method_rank(row["method"]))  # tables list methods in this order, not the runs'
    title = f"{dataset}: GAN methods and classical anchors" + (" (quick)" if args.quick else "")
    # the ablation variants are in the tables, not in the ROC plots
    paths = write_tables([row if row["method"] in ALL_METHODS
                          else {k: v for k, v in row.items() if k not in ("scores", "labels")}
                          for row in rows], out, title, command)
    print(f"wrote {paths['markdown']} ({len(rows)} runs)")


def run(recipe: dict, args: argparse.Namespace, runs_path: Path) -> None:
    dataset = recipe["dataset"]
    methods = args.methods or recipe["methods"]
    seeds = args.seeds or recipe["seeds"]
    protocols = args.protocols or recipe["protocols"]
    classes = args.classes if args.classes is not None else recipe.get("classes", protocol_classes(dataset))
    ablations = recipe.get("ablations", False) and not args.no_ablations
    done = {(r["protocol"], r["cls"], r["method"], r["seed"]) for r in read_runs(runs_path)}
    for protocol in protocols:
        for cls in classes:
            for seed in seeds:
                wanted = [m for m in methods if (protocol, cls, m, seed) not in done]
                if not wanted:
                    continue
                split = cap_test(load_split(dataset, None if protocol == "paper" else protocol, cls, seed,
                                            args.data_dir), recipe.get("max_test"), seed)
                sizes = recommended_config(split.image_size, split.channels)  # the eval transform's size and channels
                x_test, x_train = prepare_eval_batch(split.test, sizes), prepare_eval_batch(split.train, sizes)
                for method in wanted:
                    rows = (gan_rows(method, split, x_test, recipe, seed, ablations) if method in METHODS
                            else [anchor_row(method, x_train, x_test, split.test_labels, seed)])
                    rows = [{"dataset": dataset, "protocol": protocol, "cls": cls, "seed": seed, **row} for row in rows]
                    with open(runs_path, "a", encoding="utf-8") as handle:  # one write: a kill leaves whole lines
                        handle.write("".join(json.dumps(row) + "\n" for row in rows))
                    for row in rows:
                        print(f"{split.name} seed {seed} {row['method']}: AUC {row['auc']:.4f} "
                              f"({row['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
