from __future__ import annotations

from pathlib import Path

import pytest

from ganad_clinic.imaging.completeness import TAIL_BYTES, looks_unfinished
from tests.screening.helpers import image_bytes


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
@pytest.mark.parametrize("trailing", [16, 4000, TAIL_BYTES // 2])
def test_bytes_after_the_end_marker_do_not_make_an_image_look_unfinished(tmp_path: Path, kind: str,
                                                                         trailing: int) -> None:
    data = image_bytes(1, kind)
    path = tmp_path / "camera image"
    path.write_bytes(data + b"\x00maker notes" * (trailing // 12))
    assert not looks_unfinished(path)  # taken after the quiet period, not the grace period
    path.write_bytes(data[:len(data) // 2])
    assert looks_unfinished(path)
