"""The shared file helpers: one hasher, atomic file and folder writes that leave the old content
or the whole new one, and no temporary file behind."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganad_clinic.files import (
    PARTIAL_SUFFIX,
    atomic_copy,
    atomic_folder,
    atomic_output,
    atomic_write_bytes,
    file_sha256,
    partial_name,
)


def test_the_sha256_of_a_file_is_that_of_its_bytes_read_in_chunks(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) * 2 + 17)  # more than one chunk, not a whole number of them
    (tmp_path / "slide.tif").write_bytes(data)
    assert file_sha256(tmp_path / "slide.tif") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(str(tmp_path / "empty")) == hashlib.sha256(b"").hexdigest()


def test_a_temporary_name_is_hidden_beside_its_target_and_unique_to_its_writer(tmp_path: Path) -> None:
    first, second = partial_name(tmp_path / "report.pdf"), partial_name(tmp_path / "report.pdf")
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(".report.pdf.") and first.name.endswith(PARTIAL_SUFFIX)


def test_an_atomic_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "out" / "results.csv"
    atomic_write_bytes(target, b"old")
    with atomic_output(target) as partial:
        assert partial.parent == target.parent and partial != target
        partial.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # readers see the old file until the end
    assert target.read_bytes() == b"new"
    assert sorted(path.name for path in target.parent.iterdir()) == ["results.csv"]


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path, interruption) -> None:
    target = tmp_path / "results.csv"
    target.write_bytes(b"old")
    with pytest.raises(type(interruption)), atomic_output(target) as partial:
        partial.write_bytes(b"half")
        raise interruption
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_an_atomic_copy_keeps_the_bytes(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"\x89PNG pixels")
    copied = atomic_copy(source, tmp_path / "inbox" / "a.png")
    assert copied.read_bytes() == source.read_bytes()
    assert [path.name for path in copied.parent.iterdir()] == ["a.png"]


def test_an_atomic_folder_appears_whole_and_replaces_an_old_one(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with atomic_folder(target) as staging:
        assert not target.exists() and staging.parent == tmp_path
        (staging / "models").mkdir()
        (staging / "models" / "model.pt").write_bytes(b"weights 1")
    assert (target / "models" / "model.pt").read_bytes() == b"weights 1"
    with atomic_folder(target) as staging:
        (staging / "weights").write_bytes(b"weights 2")
        assert (target / "models" / "model.pt").exists()  # the old folder stays until the new one is whole
    assert sorted(path.name for path in target.iterdir()) == ["weights"]
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_a_failed_folder_write_leaves_the_old_folder_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "kept").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as staging:
        (staging / "half").write_bytes(b"new")
        raise KeyboardInterrupt
    assert [path.name for path in target.iterdir()] == ["kept"]
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_a_folder_that_must_be_new_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "1.0.0"
    target.mkdir()
    (target / "someone's").write_bytes(b"keep")
    with pytest.raises(FileExistsError), atomic_folder(target, replace=False) as staging:
        (staging / "weights").write_bytes(b"new")
    assert [path.name for path in target.iterdir()] == ["someone's"]
    assert [path.name for path in tmp_path.iterdir()] == ["1.0.0"]


def test_the_helpers_import_nothing_of_the_package() -> None:
    code = ("import sys; import ganad_clinic.files; "
            "assert [name for name in sys.modules if name.startswith('ganad_clinic.')] == ['ganad_clinic.files'], "
            "sorted(name for name in sys.modules if name.startswith('ganad_clinic'))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_files_are_flushed_through_a_handle_that_may_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows' os.fsync (FlushFileBuffers) refuses a read-only handle: every atomic write must
    flush through one opened for writing, or it fails there."""
    import fcntl

    real_fsync = os.fsync

    def windows_like_fsync(descriptor: int) -> None:
        if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(9, "Bad file descriptor")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", windows_like_fsync)
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    with atomic_folder(tmp_path / "folder") as staging:
        (staging / "b.bin").write_bytes(b"y")

    assert (tmp_path / "a.bin").read_bytes() == b"x" and (tmp_path / "folder" / "b.bin").read_bytes() == b"y"
