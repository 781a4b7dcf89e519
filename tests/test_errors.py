"""One base class for the package's own errors: every error that says what is wrong with a file,
a folder, the database or an option is a GanadError, which the command line prints on one line;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import pytest

from ganad_clinic.cli import main
from ganad_clinic.errors import ConfigError, GanadError
from ganad_clinic.imaging.datasets import DatasetError
from ganad_clinic.imaging.io import ImageReadError
from ganad_clinic.screening.registry import RegistryError
from ganad_clinic.screening.retrain import RetrainError
from ganad_clinic.screening.slide_records import UnrecordedTilingError
from ganad_clinic.store import AppendOnlyError, DatabaseLostError, StoreError


@pytest.mark.parametrize("error", [StoreError, AppendOnlyError, DatabaseLostError, ImageReadError, DatasetError,
                                   RegistryError, RetrainError, UnrecordedTilingError, ConfigError])
def test_the_packages_errors_share_one_base(error: type[Exception]) -> None:
    assert issubclass(error, GanadError)


@pytest.mark.parametrize("error", [ImageReadError, DatasetError, RetrainError, UnrecordedTilingError, ConfigError])
def test_errors_that_were_value_errors_still_are(error: type[Exception]) -> None:
    assert issubclass(error, ValueError)


def test_the_service_refuses_a_bad_configuration_with_a_config_error(tmp_path) -> None:
    from ganad_clinic.screening import ServiceConfig

    with pytest.raises(ConfigError, match="outside the inbox"):
        ServiceConfig((tmp_path,), archive=tmp_path / "archive")
    with pytest.raises(ConfigError, match="at least 1"):
        ServiceConfig((tmp_path,), torch_threads=0)


def test_a_command_line_error_is_one_line_and_a_bug_is_a_traceback(monkeypatch, capsys) -> None:
    from ganad_clinic.cli import synth

    def refused(args):
        raise DatasetError("dataset folder /data/x: no images")

    monkeypatch.setattr(synth, "run", refused)
    assert main(["synth", "--out", "x"]) == 1
    assert capsys.readouterr().err == "ganad synth: dataset folder /data/x: no images\n"

    def bug(args):
        raise ValueError("a bug deep inside torch")

    monkeypatch.setattr(synth, "run", bug)
    with pytest.raises(ValueError, match="a bug deep inside torch"):
        main(["synth", "--out", "x"])


def test_a_bug_while_training_shows_its_traceback(tmp_path, monkeypatch) -> None:
    from ganad_clinic.imaging.synthetic import write_dataset
    from ganad_clinic.model import trainer

    data = write_dataset(tmp_path / "data", n_normal=10, n_blast=2, seed=0).out_dir

    def broken(*args, **kwargs):
        raise ValueError("expected 4D input (got 3D input)")  # as torch says when the code is wrong

    monkeypatch.setattr(trainer, "train", broken)
    with pytest.raises(ValueError, match="expected 4D input"):
        main(["train", "--data", str(data), "--out", str(tmp_path / "bundle"), "--image-size", "32", "--threads", "1"])
    assert not (tmp_path / "bundle").exists()
