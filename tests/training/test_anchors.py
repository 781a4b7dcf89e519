"""The classical anchors rank shifted samples above normal ones and are deterministic per seed."""


import numpy as np
import torch

from training import anchors as anchors_module


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    normal = rng.normal(0.0, 1.0, size=(80, 1, 6, 6))
    test_normal = rng.normal(0.0, 1.0, size=(30, 1, 6, 6))
    anomalous = rng.normal(0.0, 1.0, size=(30, 1, 6, 6)) + 1.5 * np.sign(rng.normal(size=(1, 1, 6, 6)))
    x_test = np.concatenate([test_normal, anomalous])
    labels = np.array([0] * 30 + [1] * 30)
    return torch.as_tensor(normal), torch.as_tensor(x_test), labels


def test_every_anchor_separates_a_clear_shift() -> None:
    x_train, x_test, labels = _data()
    aucs = anchors_module.anchor_aucs(x_train, x_test, labels, seed=0)
    assert set(aucs) == {"pca_auc", "knn_auc", "ocsvm_auc", "iforest_auc"}
    assert all(auc > 0.9 for auc in aucs.values()), aucs


def test_isolation_forest_is_deterministic_per_seed() -> None:
    x_train, x_test, _ = _data()
    first = anchors_module.IsolationForestAnchor(seed=3).fit(x_train).score(x_test)
    again = anchors_module.IsolationForestAnchor(seed=3).fit(x_train).score(x_test)
    other = anchors_module.IsolationForestAnchor(seed=4).fit(x_train).score(x_test)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
