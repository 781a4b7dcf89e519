"""One interface for every method, and training that leaves the process's state alone."""

import ast
import dataclasses
import random

import numpy as np
import pytest
import torch

from ganad_clinic.model.config import TrainConfig
from ganad_clinic.model.methods import METHODS, REGISTRY, build_model
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.optim import OptimiserUpdate
from ganad_clinic.model.trainer import train
from tests.source_graph import PACKAGE, graph, import_circle, package_imports

from .conftest import tiny_config

MODEL = PACKAGE / "model"


def test_the_configuration_types_are_a_leaf() -> None:
    assert package_imports(MODEL / "config.py") == set()


def test_no_import_circle_in_the_model_not_even_for_type_hints() -> None:
    circle = import_circle(graph(list(MODEL.rglob("*.py"))))
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_no_code_asks_which_method_a_model_is() -> None:
    classes = {"GanAutoencoder", "AnoGAN", "EfficientGAN", "ALAD", "DetectionNetworks", "BaselineModel",
               "GanadMethod", "AnoGanMethod", "EfficientGanMethod", "AladMethod"}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                named |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                assert not named & classes, f"{path}:{node.lineno} asks isinstance of a method class"


def test_every_method_is_one_registry_entry_with_its_own_defaults() -> None:
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert METHODS == ("ganad", "anogan", "efficient-gan", "alad")
    for name, method in REGISTRY.items():
        assert method.name == name and method.description
        assert set(method.train_defaults) <= fields
        model = build_model(name, SPECS["all"].scaled(0.125), 32, 3, 16)
        assert model.method == name and set(method.ema_parts) <= {child for child, _ in model.named_children()}
        terms, reconstruction = model.eval().anomaly_terms(torch.zeros(2, 3, 32, 32))
        assert set(terms) == {"l_d", "l_r", "l_l"} and reconstruction.shape == (2, 3, 32, 32)


def test_building_networks_leaves_the_global_generator_where_it_was() -> None:
    state = torch.get_rng_state()
    a = build_model("ganad", SPECS["all"].scaled(0.125), 32, 3, 16, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = build_model("ganad", SPECS["all"].scaled(0.125), 32, 3, 16, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _process_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].copy(), "random": random.getstate(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn": (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark),
            "threads": torch.get_num_threads()}


def test_training_changes_nothing_of_the_process_and_ignores_other_draws(tiny_data, tiny_result) -> None:
    torch.manual_seed(1234)  # another stream than any training's
    before = _process_state()

    def other_code_draws(progress) -> None:  # as a thread beside the training would, between its steps
        torch.rand(100)

    again = train(tiny_config(), tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"],
                  progress=other_code_draws)
    for (name, a), b in zip(tiny_result.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    after = _process_state()
    torch.manual_seed(1234)
    for _ in range(tiny_config().steps):
        torch.rand(100)
    assert torch.equal(after.pop("torch"), torch.get_rng_state())  # only the callback's own draws moved it
    before.pop("torch")
    assert np.array_equal(after.pop("numpy"), before.pop("numpy")) and after == before


def test_the_update_on_the_cpu_is_zero_grad_backward_step() -> None:
    update = OptimiserUpdate(torch.device("cpu"))
    assert not update.mixed_precision and not update.scaler.is_enabled()
    with update.autocast():
        assert not torch.is_autocast_enabled("cpu")
    torch.manual_seed(0)
    ours, plain = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    plain.load_state_dict(ours.state_dict())
    opt_ours, opt_plain = torch.optim.AdamW(ours.parameters()), torch.optim.AdamW(plain.parameters())
    x = torch.randn(5, 3)
    for _ in range(3):
        update.step(opt_ours, ours(x).square().mean())
        opt_plain.zero_grad(set_to_none=True)
        plain(x).square().mean().backward()
        opt_plain.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), plain.parameters()))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_mixed_precision_paths_update_every_method(dtype) -> None:
    """bf16 autocast, and fp16 with a GradScaler, as on CUDA (run here on the CPU's autocast)."""
    from ganad_clinic.model.config import StepInputs
    from ganad_clinic.model.methods import method_for
    from ganad_clinic.model.trainer import recommended_config

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for name in METHODS:
        model, method = build_model(name, SPECS["all"].scaled(0.125), 32, 3, 16), method_for(name)
        config = recommended_config(32, 3, "all", name, width=0.125, latent=16)
        update = OptimiserUpdate(torch.device("cpu"), dtype)
        assert update.mixed_precision and update.scaler.is_enabled() == (dtype == torch.float16)
        before = [p.clone() for p in model.parameters()]
        step_losses = method.training_step(model, x, method.configure_optimizers(model, config),
                                           StepInputs(config, lambda t: t, torch.Generator().manual_seed(5), update))
        assert all(np.isfinite(value) for value in step_losses.values()), name
        assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters())), name
        assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_training_steps_run_in_mixed_precision(tiny_data, dtype, monkeypatch) -> None:
    from ganad_clinic.model import optim

    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    update = OptimiserUpdate(torch.device("cuda"), dtype)
    assert update.scaler.is_enabled() == (dtype == torch.float16)
    monkeypatch.setattr(optim, "amp_dtype", lambda device: dtype)
    for method in METHODS:
        config = tiny_config(method=method, device="cuda", steps=3, search_steps=3)
        result = train(config, tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
        assert all(np.isfinite(row["d"]) and np.isfinite(row["g"]) for row in result.history), method
        assert all(p.dtype == torch.float32 for p in result.model.parameters())


def test_choosing_the_all_layer_form_on_a_real_model_tracks_no_gradients() -> None:
    from ganad_clinic.model.ganad.calibration import FORM_CHOICE_MIN, fit_residual_units
    from ganad_clinic.model.scoring import ScoreConfig

    model = build_model("ganad", SPECS["all"].scaled(0.125), 32, 3, 16).eval()
    images = torch.rand(3 * FORM_CHOICE_MIN, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = np.array([0] * FORM_CHOICE_MIN + [1] * FORM_CHOICE_MIN)
    auc = fit_residual_units(model, images[:FORM_CHOICE_MIN], images[FORM_CHOICE_MIN:], labels,
                             ScoreConfig(0.2, 1.0, "normalised", "all"))
    assert auc is not None and 0.0 <= auc <= 1.0
