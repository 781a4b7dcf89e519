from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.store import ModelVersion, Store, open_store


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
