import copy
import json
import pickle

import pytest
import torch

from ganad_clinic.model import bundle as bundle_module
from ganad_clinic.model.bundle import BundleError, load_bundle, save_bundle, threshold_rule
from ganad_clinic.model.conformal import RULE, Calibration, OperatingPoint
from ganad_clinic.model.trainer import CELL_LAMBDA


def _reseal(metadata_path, metadata) -> None:
    """What a forger who knows the recipe does after editing the metadata."""
    metadata["ganad"]["seal_sha256"] = bundle_module.metadata_digest(metadata)
    metadata_path.write_text(json.dumps(metadata))


def _save(tiny_result, path, **kwargs):
    return save_bundle(path, tiny_result.model, tiny_result.score_config, tiny_result.operating_point,
                       validation_metrics=tiny_result.validation_metrics, **kwargs)


def test_round_trip_scores_identically(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle", version="1.2.0", training={"n_train": 8})
    loaded = load_bundle(path)
    point = tiny_result.operating_point
    assert loaded.version == "1.2.0"
    assert loaded.calibration == point.calibration and loaded.target_fpr == point.target_fpr == 0.05
    assert loaded.operating_point() == point
    assert loaded.operating_point(0.2) == OperatingPoint(0.2, point.calibration)
    assert loaded.threshold.value == point.threshold() and loaded.threshold.rule == threshold_rule(point)
    assert loaded.score_config == tiny_result.score_config
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    from ganad_clinic.model.scoring import score_batch
    expected = score_batch(tiny_result.model, x, tiny_result.score_config)
    assert torch.allclose(loaded.score(x).score, expected.score)
    for saved, read in zip(tiny_result.model.residual_units.scales(), loaded.model.residual_units.scales()):
        assert torch.equal(saved, read)
    metadata = json.loads((path / "configs/metadata.json").read_text())
    for key in ("version", "monai_version", "pytorch_version", "numpy_version", "task", "network_data_format",
                "changelog"):
        assert key in metadata
    assert metadata["ganad"]["threshold"]["rule"] == threshold_rule(point)
    assert metadata["ganad"]["calibration"] == {"scores": list(point.calibration.scores), "n": point.calibration.n,
                                                "target_fpr": 0.05, "rule": RULE, "shortfall": point.shortfall()}
    assert metadata["ganad"]["score"]["lambda"] == tiny_result.score_config.lam == CELL_LAMBDA


def test_overwrite_replaces_atomically_and_leaves_no_temporaries(tmp_path, tiny_result) -> None:
    path = tmp_path / "bundle"
    _save(tiny_result, path, version="1")
    _save(tiny_result, path, version="2")
    assert load_bundle(path).version == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_interrupted_save_leaves_nothing_behind(tmp_path, tiny_result, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tiny_result, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_tampered_weights_are_refused(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    weights = path / "models/model.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(path)


def test_truncated_weights_are_refused(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    weights = path / "models/model.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="tampered, truncated"):
        load_bundle(path)


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/ganad-pwned", "w"))


def test_pickle_with_code_is_never_executed(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    weights = path / "models/model.pt"
    target = tmp_path / "pwned"
    payload = pickle.dumps({"x": _Exploit()}).replace(b"/tmp/ganad-pwned", str(target).encode())
    weights.write_bytes(payload)
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["model_sha256"] = bundle_module.file_sha256(weights)  # a forger fixes the hash
    _reseal(metadata_path, metadata)  # and the seal too
    with pytest.raises(BundleError, match="not a plain weights file"):
        load_bundle(path)
    assert not target.exists()


def test_incompatible_architecture_is_refused(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["architecture"]["latent"] = 17
    _reseal(metadata_path, metadata)
    with pytest.raises(BundleError, match="incompatible"):
        load_bundle(path)


def test_newer_format_missing_and_malformed_bundles_are_refused(tmp_path, tiny_result) -> None:
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nowhere")
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["bundle_format"] = 99
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="newer"):
        load_bundle(path)
    metadata_path.write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(path)
    metadata_path.unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(path)


@pytest.mark.parametrize("old_format", [1, 2, 3])
def test_an_unsealed_older_bundle_is_refused_with_how_to_make_a_new_one(tmp_path, tiny_result, old_format) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    assert metadata["ganad"]["bundle_format"] == bundle_module.BUNDLE_FORMAT == 5
    metadata["ganad"]["bundle_format"] = old_format
    del metadata["ganad"]["seal_sha256"]
    metadata_path.write_text(json.dumps(metadata))
    expected = rf"older GANAD Clinic \(bundle format {old_format}\).*not sealed.*ganad train --data FOLDER"
    with pytest.raises(BundleError, match=expected):
        load_bundle(path)


def test_a_sealed_format_4_bundle_without_calibration_is_refused_with_how_to_retrain(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["bundle_format"] = 4
    del metadata["ganad"]["calibration"]
    _reseal(metadata_path, metadata)  # a genuine format-4 bundle: sealed, no calibration normals
    expected = (r"older GANAD Clinic \(bundle format 4\) that kept no calibration normals.*"
                r"false-positive rate.*train a new model.*ganad train --data FOLDER")
    with pytest.raises(BundleError, match=expected):
        load_bundle(path)


def test_the_chosen_evidence_power_travels_in_the_bundle(tmp_path, tiny_result) -> None:
    model = copy.deepcopy(tiny_result.model)
    model.residual_units.evidence_power.fill_(2.0)
    path = save_bundle(tmp_path / "bundle", model, tiny_result.score_config, tiny_result.operating_point)
    loaded = load_bundle(path)
    assert float(loaded.model.residual_units.evidence_power) == 2.0
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    from ganad_clinic.model.scoring import score_batch
    assert torch.allclose(loaded.score(x).score, score_batch(model, x, tiny_result.score_config).score)
    assert not torch.allclose(loaded.score(x).score, score_batch(tiny_result.model, x, tiny_result.score_config).score)


def _edit(path, change) -> None:
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    change(metadata)
    metadata_path.write_text(json.dumps(metadata))


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(metadata):
        section = metadata
        for key in keys[:-1]:
            section = section[key]
        section[keys[-1]] = value
    return change


DECIDING_EDITS = {
    "threshold 1e9": _set("ganad", "threshold", "value", 1e9),
    "threshold NaN": _set("ganad", "threshold", "value", float("nan")),
    "a calibration score": lambda metadata: metadata["ganad"]["calibration"]["scores"].__setitem__(-1, 1e9),
    "target rate": _set("ganad", "calibration", "target_fpr", 0.5),
    "lambda 0.99": _set("ganad", "score", "lambda", 0.99),
    "beta": _set("ganad", "score", "beta", 0.0),
    "score form": _set("ganad", "score", "mode", "raw"),
    "term statistics": _set("ganad", "score", "term_stats", "l_r", [0.0, 1e6]),
    "heat reference": _set("ganad", "score", "pixel_reference", 1e6),
    "method": _set("ganad", "architecture", "method", "alad"),
    "crop size": _set("ganad", "training", "crop_size", 999),
    "weights hash": _set("ganad", "model_sha256", "0" * 64),
    "version": _set("version", "9.9.9"),
    "seal removed": lambda metadata: metadata["ganad"].pop("seal_sha256"),
}


@pytest.mark.parametrize("edit", DECIDING_EDITS.values(), ids=DECIDING_EDITS.keys())
def test_an_edited_setting_breaks_the_seal_and_the_bundle_is_refused(tmp_path, tiny_result, edit) -> None:
    path = _save(tiny_result, tmp_path / "bundle", training={"crop_size": 48})
    assert load_bundle(path).threshold.value == tiny_result.operating_point.threshold()
    _edit(path, edit)
    with pytest.raises(BundleError, match="was changed after the bundle was made"):
        load_bundle(path)


def test_the_seal_is_the_bundles_identity_and_covers_the_weights_hash(tmp_path, tiny_result) -> None:
    first = load_bundle(_save(tiny_result, tmp_path / "a", version="1.0.0"))
    second = load_bundle(_save(tiny_result, tmp_path / "b", version="1.0.1"))
    metadata = first.metadata
    assert first.sha256 == metadata["ganad"]["seal_sha256"] == bundle_module.metadata_digest(metadata)
    assert metadata["ganad"]["model_sha256"] == bundle_module.file_sha256(tmp_path / "a/models/model.pt")
    assert first.sha256 != second.sha256  # same weights, other metadata: another bundle


RESEALED_BAD_VALUES = {
    "threshold NaN": (_set("ganad", "threshold", "value", float("nan")), r"threshold.value nan is not a finite"),
    "threshold infinite": (_set("ganad", "threshold", "value", float("inf")), "is not a finite number"),
    "threshold a text": (_set("ganad", "threshold", "value", "3.5"), "is not a finite number"),
    "lambda above 1": (_set("ganad", "score", "lambda", 1.5), r"score.lambda 1.5 lies outside \[0, 1\]"),
    "beta negative": (_set("ganad", "score", "beta", -1), r"score.beta -1 lies outside"),
    "spread zero": (_set("ganad", "score", "term_stats", "l_d", [0.0, 0.0]),
                    r"term_stats.l_d.spread 0.0 lies outside \(0"),
    "term missing": (lambda m: m["ganad"]["score"]["term_stats"].pop("l_l"), "needs l_d, l_r, l_l"),
    "unknown form": (_set("ganad", "score", "mode", "bogus"), "mode 'bogus' is not one of"),
    "unknown method": (_set("ganad", "architecture", "method", "magic"), "method 'magic' is not one of"),
    "two channels": (_set("ganad", "architecture", "channels", 2), "channels 2 is not 1 or 3"),
    "huge width": (_set("ganad", "architecture", "spec", "critic_widths", [8, 10**9]),
                   "critic_widths.1 .* is not a whole"),
    "huge image": (_set("ganad", "architecture", "image_size", 100_000), "image_size 100000 is not a whole"),
    "calibration unsorted": (lambda m: m["ganad"]["calibration"]["scores"].reverse(),
                             r"calibration.scores are not in ascending order"),
    "calibration score NaN": (lambda m: m["ganad"]["calibration"]["scores"].__setitem__(0, float("nan")),
                              r"calibration.scores.0 nan is not a finite number"),
    "calibration score infinite": (lambda m: m["ganad"]["calibration"]["scores"].__setitem__(-1, float("inf")),
                                   r"calibration.scores.11 inf is not a finite number"),
    "calibration score a text": (lambda m: m["ganad"]["calibration"]["scores"].__setitem__(0, "0.1"),
                                 r"calibration.scores.0 '0.1' is not a finite number"),
    "calibration empty": (_set("ganad", "calibration", "scores", []), r"calibration.scores is not a list of 1"),
    "calibration missing": (lambda m: m["ganad"].pop("calibration"), r"ganad.calibration is missing"),
    "target rate 0": (_set("ganad", "calibration", "target_fpr", 0.0), r"calibration.target_fpr 0.0 lies outside"),
    "target rate 1": (_set("ganad", "calibration", "target_fpr", 1.0), r"calibration.target_fpr 1.0 is not a rate"),
    "target rate above 1": (_set("ganad", "calibration", "target_fpr", 1.5),
                            r"calibration.target_fpr 1.5 lies outside"),
    "target rate a text": (_set("ganad", "calibration", "target_fpr", "5 %"),
                           r"calibration.target_fpr '5 %' is not a finite number"),
    "calibration count": (_set("ganad", "calibration", "n", 99),
                          r"calibration.n 99 is not the number of scores \(12\)"),
    "threshold not the calibration's": (_set("ganad", "threshold", "value", 1e9),
                                        r"threshold.value 1000000000.0 is not the calibration's threshold"),
    "crop size text": (_set("ganad", "training", "crop_size", "big"), "crop_size 'big' is not a whole"),
    "version ..": (_set("version", ".."), r"version '\.\.' is not a valid bundle version"),
    "version .": (_set("version", "."), r"version '\.' is not a valid bundle version"),
    "version with a slash": (_set("version", "1/../../x"), "is not a valid bundle version"),
    "version of 300 characters": (_set("version", "1" * 300), "is not a valid bundle version"),
}


@pytest.mark.parametrize("edit, message", RESEALED_BAD_VALUES.values(), ids=RESEALED_BAD_VALUES.keys())
def test_a_resealed_bundle_with_an_unusable_value_is_refused_naming_the_key(tmp_path, tiny_result, edit,
                                                                           message) -> None:
    path = _save(tiny_result, tmp_path / "bundle", training={"crop_size": 48})
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    edit(metadata)
    _reseal(metadata_path, metadata)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


@pytest.mark.parametrize("value", ["3", 3.0, True, None, -1])
def test_a_bundle_format_that_is_not_a_whole_number_is_refused_plainly(tmp_path, tiny_result, value) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    _edit(path, _set("ganad", "bundle_format", value))
    with pytest.raises(BundleError, match="bundle_format .* is not a format number"):
        bundle_module.read_metadata(path)


@pytest.mark.parametrize("version", ["..", ".", "a/b", "", "x" * 32])
def test_training_cannot_write_a_bundle_with_an_unsafe_version(tmp_path, tiny_result, version) -> None:
    with pytest.raises(BundleError, match="not a valid bundle version"):
        _save(tiny_result, tmp_path / "bundle", version=version)
    assert list(tmp_path.iterdir()) == []


def test_a_resealed_description_of_a_huge_network_is_refused_before_it_is_built(tmp_path, tiny_result,
                                                                               monkeypatch) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["architecture"]["spec"]["critic_widths"] = [4096] * len(
        metadata["ganad"]["architecture"]["spec"]["critic_widths"])
    metadata["ganad"]["architecture"]["image_size"] = 1024
    _reseal(metadata_path, metadata)
    built = []
    real_build = bundle_module.build_model
    monkeypatch.setattr(bundle_module, "build_model", lambda *args: built.append(
        next(real_build(*args).parameters()).device.type) or real_build(*args))
    with pytest.raises(BundleError, match="incompatible.*the metadata describes .* the weights hold"):
        load_bundle(path)
    assert built == ["meta"]  # described, never allocated


@pytest.mark.parametrize("n, target, words", [
    (1, 0.5, "the 1st smallest of 1 calibration-normal scores, for a false-positive rate of at most 50 %"),
    (3, 0.5, "the 2nd smallest of 3 calibration-normal scores, for a false-positive rate of at most 50 %"),
    (3, 0.25, "the 3rd smallest of 3 calibration-normal scores, for a false-positive rate of at most 25 %"),
    (21, 0.05, "the 21st smallest of 21 calibration-normal scores, for a false-positive rate of at most 4.55 %"),
])
def test_the_threshold_rule_says_the_rank_and_the_rate_kept(n, target, words) -> None:
    point = OperatingPoint(target, Calibration.of(range(n)))
    assert threshold_rule(point) == threshold_rule(point, with_shortfall=False) == f"split-conformal: {words}"


def test_the_threshold_rule_adds_the_shortfall_of_a_small_calibration() -> None:
    point = OperatingPoint(0.05, Calibration.of(range(11)))
    rule = threshold_rule(point)
    assert rule == (f"split-conformal: the 11th smallest of 11 calibration-normal scores, for a false-positive rate "
                    f"of at most 8.33 %; {point.shortfall()}")
    assert threshold_rule(point, with_shortfall=False) == rule.split("; ")[0]
