import torch
from torch.nn.utils import parametrize

from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.scoring import ScoreConfig
from training.bench import CPU_FLAGS, cpu_flags
from training.bench_backends import ScoringPass, max_rel_diff, plain_model


def _parametrised(model: torch.nn.Module) -> int:
    return sum(parametrize.is_parametrized(module, "weight") for module in model.modules())


def test_the_folded_model_has_no_spectral_norm_left_and_scores_as_the_original():
    torch.manual_seed(0)
    model = GanAutoencoder(SPECS["all"].scaled(0.125), 32, 3, 16)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    model.train()
    for _ in range(3):  # power iterations move u and v, so sigma is no longer the initial one
        model.anomaly_terms(x)
    config = ScoreConfig(mode="raw", feature_layers="all")
    reference = ScoringPass(model.eval(), config)(x)
    plain = plain_model(model)
    assert _parametrised(model) > 0 and _parametrised(plain) == 0
    for folded, original in zip(ScoringPass(plain, config)(x), reference):
        assert max_rel_diff(folded.detach().numpy(), original.detach().numpy()) < 1e-5


def test_cpu_flags_name_every_feature_the_figures_depend_on():
    flags = cpu_flags()
    assert tuple(flags) == CPU_FLAGS
    assert all(isinstance(found, bool) for found in flags.values())
