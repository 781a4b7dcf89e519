"""Fixtures every test folder shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.screening.helpers import tiny_bundle_once


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """Entry points (`ganad watch`, the app's start) set torch's process-wide thread count; the tests
    that run them in-process give the others theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GANAD_HOME or GANAD_DB must never leak into a test."""
    monkeypatch.delenv("GANAD_HOME", raising=False)
    monkeypatch.delenv("GANAD_DB", raising=False)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle_once(tmp_path_factory)
