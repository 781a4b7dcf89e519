"""The classical anchors every table is judged against, on the same eval-transformed pixels as
the model: PCA reconstruction error and nearest-neighbour distance (from the package), one-class
SVM and Isolation Forest (scikit-learn, part of the `training` extra, not of the app).

Each anchor: `fit(x_train)` on normal images only, `score(x)` higher = more anomalous.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM

from ganad_clinic.model.baselines.pixel import NearestNeighbourBaseline, PCABaseline, flatten_images
from ganad_clinic.model.scoring import roc_auc


class OneClassSVMAnchor:
    """RBF one-class SVM (gamma "scale", ν = 0.1); score = minus the signed distance to its boundary."""

    def __init__(self, nu: float = 0.1) -> None:
        self.model = OneClassSVM(kernel="rbf", gamma="scale", nu=nu)

    def fit(self, x: torch.Tensor | np.ndarray) -> OneClassSVMAnchor:
        self.model.fit(flatten_images(x))
        return self

    def score(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        return -self.model.decision_function(flatten_images(x))


class IsolationForestAnchor:
    """Isolation Forest of 200 trees; score = minus scikit-learn's normality score."""

    def __init__(self, seed: int = 0) -> None:
        self.model = IsolationForest(n_estimators=200, random_state=seed)

    def fit(self, x: torch.Tensor | np.ndarray) -> IsolationForestAnchor:
        self.model.fit(flatten_images(x))
        return self

    def score(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        return -self.model.score_samples(flatten_images(x))


def anchors(seed: int = 0) -> dict[str, object]:
    return {"pca": PCABaseline(), "knn": NearestNeighbourBaseline(), "ocsvm": OneClassSVMAnchor(),
            "iforest": IsolationForestAnchor(seed)}


def anchor_scores(x_train: torch.Tensor, x_test: torch.Tensor, seed: int = 0) -> dict[str, np.ndarray]:
    """Every anchor fitted on `x_train` (normal images) and scored on `x_test`."""
    return {name: anchor.fit(x_train).score(x_test) for name, anchor in anchors(seed).items()}


def anchor_aucs(x_train: torch.Tensor, x_test: torch.Tensor, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    return {f"{name}_auc": roc_auc(scores, labels) for name, scores in anchor_scores(x_train, x_test, seed).items()}
