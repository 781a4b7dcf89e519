"""`ganad models compare` and `activate` through the acceptance check, `list` linking its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from ganad_clinic.cli import main
from ganad_clinic.store import open_store
from tests.screening.test_acceptance import candidate_bundle, reviewed_evidence


def models(home: Path, *args: str) -> int:
    return main(["models", *args, "--home", str(home)])


@pytest.fixture
def registry(tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture) -> Path:
    """A home with the tiny model active, 4 normal and 1 anomalous reviewed slides, and candidate 1.1.0."""
    home = tmp_path / "home"
    assert models(home, "import", str(tiny_bundle)) == 0
    with open_store(home=home) as store:
        reviewed_evidence(store, store.active_model_version(), tmp_path / "slides", 4, 1)
    assert models(home, "import", str(candidate_bundle(tiny_bundle, tmp_path / "candidate"))) == 0
    capsys.readouterr()
    return home


def test_the_first_import_is_active_and_its_check_recorded(tmp_path: Path, tiny_bundle: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert models(home, "import", str(tiny_bundle)) == 0
    out = capsys.readouterr().out
    assert "activated without a comparison" in out and "would not pass an acceptance check" in out
    assert "Verdict: refused" in out
    with open_store(home=home) as store:
        [checked] = store.list_audit_events("model.acceptance_checked")
        assert store.active_model_version().version == "1.0.0" and checked.details["active"] is None


def test_a_refused_activation_changes_nothing_and_an_override_is_audited(
        registry: Path, capsys: pytest.CaptureFixture) -> None:
    assert models(registry, "compare", "1.1.0") == 1
    out = capsys.readouterr().out
    assert "Acceptance check of model 1.1.0 against the active model 1.0.0" in out
    assert "too little evidence: 4 normal slides, fewer than the 20" in out

    assert models(registry, "activate", "1.1.0") == 1
    err = capsys.readouterr().err
    assert "was not activated; nothing changed" in err and "--override REASON" in err
    assert "confirmed anomalous slides, fewer than the 5" in err
    with open_store(home=registry) as store:
        assert store.active_model_version().version == "1.0.0"
        assert not store.list_audit_events("model.activated")

    assert models(registry, "activate", "1.1.0", "--override", "validated on the reference set") == 0
    assert "model 1.1.0 is active (its acceptance check refused it; the override" in capsys.readouterr().out
    with open_store(home=registry) as store:
        assert store.active_model_version().version == "1.1.0"
        [override] = store.list_audit_events("model.activation_override")
        assert override.details["reason"] == "validated on the reference set"
        assert any("fewer than the 20" in refusal for refusal in override.details["refusals"])
    assert models(registry, "activate", "1.1.0") == 0
    assert "already active" in capsys.readouterr().out


def test_compare_writes_the_report_and_list_links_it(registry: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "reports" / "acceptance 1.1.0.pdf"
    assert models(registry, "compare", "1.1.0", "--json", "--report", str(report)) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["accepted"] is False and result["report"] == str(report)
    assert result["candidate"]["n_normal"] == 4 and result["active_figures"]["n_anomalous"] == 1
    assert set(result["differences"]) == {"auc", "sensitivity", "specificity"}
    text = " ".join(page.extract_text() for page in PdfReader(report).pages)
    assert "Acceptance check of model 1.1.0" in text and "Refused" in text

    assert models(registry, "list") == 0
    assert f"acceptance report: {report}" in capsys.readouterr().out
    assert models(registry, "list", "--json") == 0
    listed = {entry["version"]: entry["acceptance_report"] for entry in json.loads(capsys.readouterr().out)}
    assert listed == {"1.0.0": None, "1.1.0": str(report)}
    with open_store(home=registry) as store:
        [linked] = store.list_audit_events("model.acceptance_report")
        assert linked.details["accepted"] is False


def test_rollback_says_it_is_not_checked(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    assert "not checked again" in capsys.readouterr().out
