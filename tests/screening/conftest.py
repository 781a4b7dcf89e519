from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.store import ModelVersion, Store, open_store

from tests.screening.helpers import tiny_bundle_once


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The screening service sets torch's process-wide thread count; other tests get theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANAD_HOME", raising=False)
    monkeypatch.delenv("GANAD_DB", raising=False)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle_once(tmp_path_factory)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_store(home=home) as opened:
        yield opened


@pytest.fixture
def model(store: Store, tiny_bundle: Path, home: Path) -> ModelVersion:
    return import_bundle(store, tiny_bundle, home, actor="tester").model


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder
