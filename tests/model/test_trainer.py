import copy
import threading

import numpy as np
import pytest
import torch

from ganad_clinic.model.trainer import (
    CELL_LAMBDA,
    TrainConfig,
    TrainingCancelled,
    TrainProgress,
    paper_recipe,
    recommended_config,
    train,
)

from .conftest import tiny_config


def test_training_returns_a_calibrated_model(tiny_result) -> None:
    assert not tiny_result.model.training
    assert tiny_result.score_config.mode == "normalised"
    assert set(tiny_result.score_config.term_stats) == {"l_d", "l_r", "l_l"}
    assert tiny_result.score_config.pixel_reference > 0
    assert tiny_result.operating_point.target_fpr == TrainConfig.target_fpr == 0.05
    assert 0.0 <= tiny_result.validation_metrics["auc"] <= 1.0
    assert [row["step"] for row in tiny_result.history] == [1, 2, 3, 4]
    assert all(np.isfinite(row["ae"]) and np.isfinite(row["d"]) for row in tiny_result.history)


def test_the_calibration_normals_set_the_split_conformal_threshold(tiny_data, tiny_result) -> None:
    from ganad_clinic.model.scoring import score_batch
    from ganad_clinic.model.trainer import prepare_eval_batch

    point = tiny_result.operating_point
    x = prepare_eval_batch(tiny_data["calibration"], tiny_config())
    expected = np.sort(score_batch(tiny_result.model, x, tiny_result.score_config).score.numpy().astype(np.float64))
    np.testing.assert_allclose(point.calibration.scores, expected, rtol=1e-5)
    assert point.calibration.n == len(tiny_data["calibration"]) == 12
    # 12 normals cannot resolve 5 %: ceil(13 x 0.95) = 13 > 12, so the threshold is the highest score
    assert point.threshold() == point.calibration.scores[-1]
    assert point.shortfall() is not None and point.kept_rate() == pytest.approx(1 / 13)
    metrics = tiny_result.validation_metrics
    assert metrics["threshold"] == point.threshold() and metrics["n_calibration"] == 12
    assert "youden" not in " ".join(map(str, metrics)).lower()


def test_the_calibration_images_take_no_part_in_checkpoint_choice(tiny_data, tiny_result) -> None:
    from .conftest import cells

    other = train(tiny_config(), tiny_data["train"], tiny_data["val"], tiny_data["labels"],
                  cells(12, False, start=100))
    for (name, a), b in zip(tiny_result.model.state_dict().items(), other.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert other.score_config == tiny_result.score_config and other.best_step == tiny_result.best_step
    assert other.operating_point.calibration != tiny_result.operating_point.calibration
    assert other.operating_point.threshold() != tiny_result.operating_point.threshold()


def test_the_target_rate_is_the_configs(tiny_data) -> None:
    result = train(tiny_config(steps=2, target_fpr=0.2), tiny_data["train"], tiny_data["val"], tiny_data["labels"],
                   tiny_data["calibration"])
    point = result.operating_point
    assert point.target_fpr == 0.2 and point.shortfall() is None
    # ceil(13 x 0.8) = 11: the 11th smallest of 12 scores
    assert point.threshold() == point.calibration.scores[10]
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        tiny_config(target_fpr=0.0)


def test_residual_units_are_fitted_on_the_training_normals(tiny_data, tiny_result) -> None:
    from ganad_clinic.model.ganad.calibration import fit_residual_units
    from ganad_clinic.model.trainer import prepare_eval_batch

    model = copy.deepcopy(tiny_result.model)
    fitted = [scale.clone() for scale in model.residual_units.scales()]
    assert all((scale > 0).all() and not torch.allclose(scale, torch.ones_like(scale)) for scale in fitted)
    fit_residual_units(model, prepare_eval_batch(tiny_data["train"], tiny_config()))
    assert all(torch.allclose(a, b) for a, b in zip(fitted, model.residual_units.scales()))
    assert float(model.residual_units.evidence_power) == 8.0  # no validation anomalies: the default


def test_small_images_train_upright_and_cell_crops_with_flips_and_turns() -> None:
    assert recommended_config(28, 1).geometry == "none"
    assert recommended_config(32, 3).geometry == "none"
    assert recommended_config(64, 3).geometry == "cells"
    assert recommended_config(28, 1, geometry="shift").geometry == "shift"
    with pytest.raises(ValueError, match="geometry"):
        tiny_config(geometry="mirror")


def test_cell_crops_weigh_the_pixel_residual_more_than_small_images_do() -> None:
    assert recommended_config(64, 3).lam == TrainConfig().lam == CELL_LAMBDA < recommended_config(28, 1).lam == 0.8
    assert recommended_config(64, 3, lam=0.5).lam == 0.5
    assert recommended_config(64, 3, method="alad").lam == 1.0  # a baseline keeps its reference's weights
    assert paper_recipe(recommended_config(64, 3)).lam == 0.8


def test_same_seed_same_weights_on_cpu(tiny_data, tiny_result) -> None:
    again = train(tiny_config(), tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
    for (name, a), b in zip(tiny_result.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert again.operating_point == tiny_result.operating_point
    other = train(tiny_config(seed=1), tiny_data["train"], tiny_data["val"], tiny_data["labels"],
                  tiny_data["calibration"])
    assert not torch.equal(next(iter(other.model.parameters())), next(iter(tiny_result.model.parameters())))


def test_progress_reports_every_step_with_time_left(tiny_data) -> None:
    seen: list[TrainProgress] = []
    train(tiny_config(steps=3), tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"],
          progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3]
    assert seen[-1].seconds_left == 0 and seen[0].seconds_left >= 0
    assert seen[1].validation is not None and seen[1].validation_name == "auc"
    assert set(seen[0].losses) == {"ae", "d", "g"}


def test_cancel_flag_stops_training(tiny_data) -> None:
    cancel = threading.Event()

    def stop_after_two(progress: TrainProgress) -> None:
        if progress.step == 2:
            cancel.set()

    steps: list[int] = []
    with pytest.raises(TrainingCancelled):
        train(tiny_config(steps=10), tiny_data["train"], tiny_data["val"], tiny_data["labels"],
              tiny_data["calibration"], progress=lambda p: (steps.append(p.step), stop_after_two(p)), cancel=cancel)
    assert steps == [1, 2]


def test_normal_only_validation_still_calibrates_on_the_calibration_normals(tiny_data) -> None:
    seen: list[TrainProgress] = []
    result = train(tiny_config(steps=2), tiny_data["train"], tiny_data["val"][:3], [0, 0, 0], tiny_data["calibration"],
                   progress=seen.append)
    assert seen[-1].validation_name == "pseudo-anomaly auc" == result.choices["figure"]
    assert result.operating_point.calibration.n == 12
    assert result.validation_metrics["threshold"] == result.operating_point.threshold()


def test_paper_recipe_uses_raw_sums_without_ema_or_augmentation(tiny_data) -> None:
    config = paper_recipe(tiny_config(steps=2))
    assert (config.diff_augment, config.ema_decay, config.score_mode) == ((), None, "raw")
    result = train(config, tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
    assert result.score_config.mode == "raw"


def test_bad_inputs_are_refused(tiny_data) -> None:
    with pytest.raises(ValueError, match="at least 2 normal"):
        train(tiny_config(), tiny_data["train"][:1], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
    with pytest.raises(ValueError, match="validation needs"):
        train(tiny_config(), tiny_data["train"], tiny_data["val"][3:], [1, 1, 1], tiny_data["calibration"])
    with pytest.raises(ValueError, match="calibration needs at least one normal image"):
        train(tiny_config(), tiny_data["train"], tiny_data["val"], tiny_data["labels"], [])
    with pytest.raises(ValueError, match="unknown architecture"):
        tiny_config(spec="resnet")


def test_the_choice_set_is_validation_with_anomalies_else_normals_and_pseudo_anomalies_of_them() -> None:
    from ganad_clinic.model.trainer import choice_set

    x = torch.rand(5, 3, 16, 16) * 2 - 1
    labels = np.array([0, 0, 0, 1, 1])
    chosen, chosen_labels, name = choice_set(x, labels, seed=0)
    assert chosen is x and chosen_labels is labels and name == "auc"
    chosen, chosen_labels, name = choice_set(x[:3], np.zeros(3, dtype=np.int64), seed=0)
    assert name == "pseudo-anomaly auc" and len(chosen) == 12 and torch.equal(chosen[:3], x[:3])
    assert chosen_labels.tolist() == [0] * 3 + [1] * 9


def test_weights_are_chosen_by_auc_on_the_choice_set_ties_keeping_the_runs_own() -> None:
    from ganad_clinic.model.scoring import ScoreConfig
    from ganad_clinic.model.trainer import choose_weights

    labels = np.array([0] * 20 + [1] * 20)
    rng = np.random.default_rng(0)
    terms = {"l_d": labels + rng.normal(0, 0.1, 40), "l_r": rng.normal(0, 1, 40), "l_l": rng.normal(0, 1, 40)}
    chosen, auc = choose_weights(terms, labels, ScoreConfig(lam=0.2, beta=1.0, mode="raw"))
    assert (chosen.lam, chosen.beta, auc) == (1.0, 0.0, 1.0)  # only the critic's term tells them apart
    same = {"l_d": labels * 1.0, "l_r": labels * 1.0, "l_l": labels * 1.0}
    chosen, auc = choose_weights(same, labels, ScoreConfig(lam=0.5, beta=1.0, mode="raw"))
    assert (chosen.lam, chosen.beta, auc) == (0.5, 1.0, 1.0)  # every pair ties: the run's own stays


def test_weights_are_chosen_on_pseudo_anomalies_only_when_asked_and_never_by_the_paper_recipe() -> None:
    from .conftest import cells

    train_images, val, calibration = cells(8, False), cells(20, False, start=60), cells(4, False, start=90)
    default = train(tiny_config(steps=2), train_images, val, [0] * 20, calibration)
    assert default.choices["figure"] == "pseudo-anomaly auc" and "lam" not in default.choices  # measured: no gain
    assert (default.score_config.lam, default.score_config.beta) == (tiny_config().lam, tiny_config().beta)
    asked = train(tiny_config(steps=2, choose_weights=True), train_images, val, [0] * 20, calibration)
    assert 0 <= asked.choices["weights_figure"] <= 1
    assert (asked.score_config.lam, asked.score_config.beta) == (asked.choices["lam"], asked.choices["beta"])
    paper = train(paper_recipe(tiny_config(steps=2, width=0.0625, choose_weights=True)), train_images, val,
                  [0] * 20, calibration)
    assert "lam" not in paper.choices
    assert (paper.score_config.lam, paper.score_config.beta) == (0.8, 1.0)
