from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.store import open_store


def test_demo_quick_runs_the_whole_product(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    workdir = tmp_path / "demo"
    assert main(["demo", "--quick", "--workdir", str(workdir), "--threads", "1"]) == 0  # 1: the cores are busy
    out = capsys.readouterr().out
    assert "AUC" in out and "report:" in out

    assert (workdir / "report.pdf").read_bytes().startswith(b"%PDF")
    with open(workdir / "report.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 142
    with open(workdir / "demo-results.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 142  # the 140 test crops of the paper split and 2 fields
    assert sum(row["kind"] == "field" for row in rows) == 2
    assert all(row["score"] and row["flagged"] in ("0", "1") and not row["rejected"] for row in rows)
    assert {row["truth"] for row in rows} == {"normal", "blast"}
    assert all(Path(row["heatmap"]).is_file() for row in rows)
    assert not list((workdir / "inbox").glob("*.part"))

    with open_store(home=workdir / "home") as store:
        assert store.active_model_version() is not None
        assert store.list_pending_slides() == []
        assert len(store.list_slides()) == 142
        assert {user.name: user.role.value for user in store.list_users()} == {
            "demo-admin": "admin", "demo-supervisor": "supervisor", "demo-tech": "technician"}
    users = (workdir / "demo-users.txt").read_text().splitlines()
    assert "demo users demo-admin, demo-supervisor, demo-tech made; their passwords are in" in out
    assert (workdir / "demo-users.txt").stat().st_mode & 0o077 == 0  # only its owner reads the passwords
    from ganad_clinic.screening.users import sign_in

    name, _, password = users[1].split("\t")
    with open_store(home=workdir / "home") as store:
        assert sign_in(store, name, password).role.value == "supervisor"
