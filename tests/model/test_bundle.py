import copy
import json
import pickle

import pytest
import torch

from ganad_clinic.model import bundle as bundle_module
from ganad_clinic.model.bundle import BundleError, load_bundle, save_bundle
from ganad_clinic.model.trainer import CELL_LAMBDA


def _save(tiny_result, path, **kwargs):
    return save_bundle(path, tiny_result.model, tiny_result.score_config, tiny_result.threshold,
                       validation_metrics=tiny_result.validation_metrics, **kwargs)


def test_round_trip_scores_identically(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle", version="1.2.0", training={"n_train": 8})
    loaded = load_bundle(path)
    assert loaded.version == "1.2.0"
    assert loaded.threshold == tiny_result.threshold
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
    assert metadata["ganad"]["threshold"]["rule"] == tiny_result.threshold.rule
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
    metadata["ganad"]["model_sha256"] = bundle_module.file_sha256(weights)  # a forger fixes the hash too
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="not a plain weights file"):
        load_bundle(path)
    assert not target.exists()


def test_incompatible_architecture_is_refused(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["architecture"]["latent"] = 17
    metadata_path.write_text(json.dumps(metadata))
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


def test_a_format_1_bundle_of_the_paper_model_is_refused_with_a_retrain_hint(tmp_path, tiny_result) -> None:
    path = _save(tiny_result, tmp_path / "bundle")
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    assert metadata["ganad"]["bundle_format"] == 3
    metadata["ganad"]["bundle_format"] = 1  # its score terms had no residual units
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match=r"older GANAD Clinic \(bundle format 1\).*retrain"):
        load_bundle(path)


def test_the_chosen_evidence_power_travels_in_the_bundle(tmp_path, tiny_result) -> None:
    model = copy.deepcopy(tiny_result.model)
    model.residual_units.evidence_power.fill_(2.0)
    path = save_bundle(tmp_path / "bundle", model, tiny_result.score_config, tiny_result.threshold)
    loaded = load_bundle(path)
    assert float(loaded.model.residual_units.evidence_power) == 2.0
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    from ganad_clinic.model.scoring import score_batch
    assert torch.allclose(loaded.score(x).score, score_batch(model, x, tiny_result.score_config).score)
    assert not torch.allclose(loaded.score(x).score, score_batch(tiny_result.model, x, tiny_result.score_config).score)


def test_a_format_2_bundle_loads_with_the_power_format_2_always_used(tmp_path, tiny_result) -> None:
    model = copy.deepcopy(tiny_result.model)
    model.residual_units.evidence_power.fill_(8.0)
    path = save_bundle(tmp_path / "bundle", model, tiny_result.score_config, tiny_result.threshold)
    weights = path / "models/model.pt"
    state = torch.load(weights, weights_only=True)
    del state["residual_units.evidence_power"]  # format 2 had no such key: its power was always 8
    torch.save(state, weights)
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["ganad"]["bundle_format"] = 2
    metadata["ganad"]["model_sha256"] = bundle_module.file_sha256(weights)
    metadata_path.write_text(json.dumps(metadata))
    loaded = load_bundle(path)
    assert float(loaded.model.residual_units.evidence_power) == 8.0
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    from ganad_clinic.model.scoring import score_batch
    assert torch.allclose(loaded.score(x).score, score_batch(model, x, tiny_result.score_config).score)
