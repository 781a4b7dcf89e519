"""Scoring on a chosen device: the CPU always works, CUDA without a GPU is refused by name."""

import pytest
import torch

from ganad_clinic.model.bundle import BundleError, load_bundle, save_bundle
from ganad_clinic.model.device import resolve_device
from ganad_clinic.model.scoring import score_batch


def test_auto_is_the_cpu_without_a_gpu_and_names_are_checked() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_naming_the_bundle(tmp_path, tiny_result) -> None:
    path = save_bundle(tmp_path / "bundle", tiny_result.model, tiny_result.score_config, tiny_result.operating_point)
    with pytest.raises(BundleError, match=r"bundle .*no CUDA GPU"):
        load_bundle(path, device="cuda")


def test_bundle_scores_on_its_device_and_returns_cpu_float32(tmp_path, tiny_result) -> None:
    path = save_bundle(tmp_path / "bundle", tiny_result.model, tiny_result.score_config, tiny_result.operating_point)
    bundle = load_bundle(path, device="auto")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    batch = bundle.score(x)
    assert batch.score.device.type == "cpu" and batch.score.dtype == torch.float32
    expected = score_batch(tiny_result.model, x, tiny_result.score_config)
    assert torch.allclose(batch.score, expected.score, atol=1e-3 if bundle.device.type == "cuda" else 1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_watch_service_refuses_cuda_without_a_gpu_before_starting(tmp_path) -> None:
    from ganad_clinic.screening import ServiceConfig

    with pytest.raises(ValueError, match="no CUDA GPU"):
        ServiceConfig((tmp_path,), device="cuda")
