from __future__ import annotations

from pathlib import Path

import pytest

from tests.screening.helpers import tiny_bundle_once


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model: different weights, the same version string (1.0.0)."""
    return tiny_bundle_once(tmp_path_factory, seed=1)
