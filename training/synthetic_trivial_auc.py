"""Print how well trivial global statistics separate synthetic normals from blasts (AUC).

The synthetic set is only a fair stand-in if a model has to look at the white cell: mean colour
and mean brightness must each stay below AUC 0.75. The chromatin-pixel fraction is printed for
context; it is meant to separate the classes, since blasts have larger nuclei.
    python training/synthetic_trivial_auc.py [--normal 130] [--blast 130] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from ganad_clinic.imaging.synthetic import crop_rng, generate_cell, nucleus_fraction

STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "mean R": lambda image: float(image[..., 0].mean()),
    "mean G": lambda image: float(image[..., 1].mean()),
    "mean B": lambda image: float(image[..., 2].mean()),
    "mean brightness": lambda image: float(image.mean()),
    "chromatin pixel fraction": nucleus_fraction,
}
TARGET = 0.75


def separation_auc(normal: np.ndarray, blast: np.ndarray) -> float:
    """max(AUC, 1 - AUC) of a score, from average ranks (Mann-Whitney U), so direction does not matter."""
    scores = np.concatenate([normal, blast])
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    u = ranks[len(normal) :].sum() - len(blast) * (len(blast) + 1) / 2
    auc = u / (len(normal) * len(blast))
    return max(auc, 1.0 - auc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", type=int, default=130)
    parser.add_argument("--blast", type=int, default=130)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    normal = [generate_cell(crop_rng(args.seed, False, i), blast=False) for i in range(args.normal)]
    blast = [generate_cell(crop_rng(args.seed, True, i), blast=True) for i in range(args.blast)]
    print(f"{args.normal} normal vs {args.blast} blast crops, seed {args.seed}; max(AUC, 1-AUC):")
    for name, statistic in STATISTICS.items():
        auc = separation_auc(np.array([statistic(i) for i in normal]), np.array([statistic(i) for i in blast]))
        if statistic is nucleus_fraction:
            verdict = "(context: meant to separate)"
        else:
            verdict = "ok" if auc < TARGET else f"TOO HIGH (>= {TARGET})"
        print(f"  {name:<26} {auc:.3f}  {verdict}")


if __name__ == "__main__":
    main()
