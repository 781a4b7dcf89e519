"""A specimen from the scanner to the LIS, through the command line: two users, a specimen folder
of crops dropped in the inbox, sign-off refused before its flags are reviewed and to a technician,
refused with a wrong password (audited), accepted from a supervisor; the outbox holds one ORU^R01
and one DiagnosticReport that hl7apy and fhir.resources accept, one OBX / Observation per image;
an amendment after sign-off is signed again and sent as a corrected result."""

from __future__ import annotations

import base64
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from hl7apy.parser import parse_message
from pypdf import PdfReader

from ganad_clinic.cli import main
from ganad_clinic.store import open_store
from tests.app.builders import write_cells

ACCESSION = "HEM-2026-0042"
ADMIN, TECH, SUPER = ("adam", "admin-pass-1"), ("tina", "tech-pass-22"), ("sam", "super-pass-333")


def _run(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(list(argv))


def test_a_specimen_is_reviewed_signed_sent_and_amended(tmp_path: Path, tiny_bundle: Path, monkeypatch, capsys):
    home, inbox, outbox = tmp_path / "home", tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    at = ["--home", str(home)]
    assert main(["models", "import", str(tiny_bundle), *at]) == 0
    assert _run(monkeypatch, f"{ADMIN[1]}\n", "users", "add", ADMIN[0], "--role", "admin", "--password-stdin",
                *at) == 0
    for (name, password), role, full in ((TECH, "technician", "Tina O'Brien"), (SUPER, "supervisor", "Sam ^Lee|&~\\")):
        assert _run(monkeypatch, f"{ADMIN[1]}\n{password}\n", "users", "add", name, "--role", role, "--full-name",
                    full, "--admin", ADMIN[0], "--password-stdin", *at) == 0
    specimen_folder = inbox / ACCESSION
    crops = write_cells(tmp_path / "made", 2) + write_cells(tmp_path / "made", 1, blast=True)
    specimen_folder.mkdir()
    for crop in crops:
        shutil.copy(crop, specimen_folder / crop.name)
    # the tiny test model is weak: a generous operating point makes it flag some of the three
    assert _run(monkeypatch, f"{SUPER[1]}\n", "operating-point", "set", "0.9", "--reason", "test", "--user", SUPER[0],
                "--password-stdin", *at) == 0
    assert main(["watch", "--inbox", str(inbox), "--once", "--threads", "1", *at]) == 0
    with open_store(home=home) as store:
        specimen = store.get_specimen(ACCESSION)
        assert len(specimen.slides) == 3
        flagged = [s for s in specimen.slides if s.score.flagged]
    assert flagged, "at a 90 % operating point the tiny model flags at least one crop"
    capsys.readouterr()

    sign = ["signoff", ACCESSION, "--outbox", str(outbox), "--password-stdin", *at]
    assert _run(monkeypatch, f"{SUPER[1]}\n", *sign, "--user", SUPER[0]) == 1
    assert "is flagged and not reviewed" in capsys.readouterr().err
    for summary in flagged:
        assert _run(monkeypatch, f"{TECH[1]}\n", "review", str(specimen_folder / summary.slide.file_name),
                    "--decision", "anomaly", "--note", "blast-like\nnucleus | large", "--user", TECH[0],
                    "--password-stdin", *at) == 0
    assert _run(monkeypatch, f"{TECH[1]}\n", *sign, "--user", TECH[0]) == 1
    assert "tina (technician) may not sign specimens off" in capsys.readouterr().err
    assert _run(monkeypatch, "wrong-password\n", *sign, "--user", SUPER[0]) == 1
    assert "unknown user or wrong password" in capsys.readouterr().err
    assert list(outbox.iterdir()) == []  # nothing half-written by the refusals

    assert _run(monkeypatch, f"{SUPER[1]}\n", *sign, "--user", SUPER[0]) == 0
    [hl7_file] = sorted(outbox.glob("*.hl7"))
    [fhir_file] = sorted(outbox.glob("*.fhir.json"))
    message = parse_message(hl7_file.read_bytes().decode("utf-8"), find_groups=True, validation_level=2)
    message.validate()
    order = message.oru_r01_patient_result.oru_r01_order_observation
    assert order.obr.obr_3.to_er7() == ACCESSION and order.obr.obr_25.to_er7() == "F"
    observations = order.children.get("ORU_R01_OBSERVATION")
    assert len(observations) == 3
    abnormal = {obx.obx.obx_8.to_er7() for obx in observations}
    assert "A" in abnormal
    assert "\\F\\" in order.obr.obr_32.to_er7() and "\\S\\" in order.obr.obr_32.to_er7()  # Sam ^Lee|&~\ escaped
    assert any("\\.br\\" in obx.nte.nte_3.to_er7() for obx in observations)  # the note's line break
    report = DiagnosticReport.model_validate(json.loads(fhir_file.read_text(encoding="utf-8")))
    assert report.status == "final" and len(report.result) == len(report.contained) == 3
    assert report.specimen[0].identifier.value == ACCESSION
    assert report.resultsInterpreter[0].display == "Sam ^Lee|&~\\"
    [pdf] = sorted(outbox.glob("*.pdf"))
    assert report.presentedForm[0].contentType == "application/pdf"
    sent = json.loads(fhir_file.read_text(encoding="utf-8"))["presentedForm"][0]["data"]
    assert base64.b64decode(sent) == pdf.read_bytes()
    page = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert f"specimen {ACCESSION}" in page and "Signed electronically" in page and "Sam ^Lee" in page
    assert _run(monkeypatch, "", "report", "--accession", ACCESSION, "--out", str(tmp_path / "again.pdf"), *at) == 0
    assert "Signed electronically" in "".join(p.extract_text() for p in PdfReader(tmp_path / "again.pdf").pages)

    with open_store(home=home) as store:
        actions = [event.action for event in store.list_audit_events()]
        assert actions.count("user.sign_in_failed") == 1 and actions.count("specimen.signed") == 1
        assert store.get_specimen(ACCESSION).state.value == "signed"

    amended = flagged[0].slide.file_name
    assert _run(monkeypatch, f"{SUPER[1]}\n", "review", str(specimen_folder / amended), "--decision", "normal",
                "--note", "stain artefact", "--user", SUPER[0], "--password-stdin", *at) == 0
    assert "an amendment" in capsys.readouterr().out
    assert _run(monkeypatch, f"{SUPER[1]}\n", *sign, "--user", SUPER[0]) == 0
    corrected = [path for path in outbox.glob("*.hl7") if path != hl7_file]
    [again] = corrected
    second = parse_message(again.read_bytes().decode("utf-8"), find_groups=True, validation_level=2)
    order = second.oru_r01_patient_result.oru_r01_order_observation
    assert order.obr.obr_25.to_er7() == "C"
    assert {obx.obx.obx_11.to_er7() for obx in order.children.get("ORU_R01_OBSERVATION")} == {"C"}
    assert json.loads(next(p for p in outbox.glob("*.fhir.json") if p != fhir_file).read_text())["status"] == "amended"


def test_a_missing_or_full_outbox_fails_the_sign_off_with_nothing_signed_or_left(tmp_path: Path, monkeypatch,
                                                                                  capsys):
    import errno

    import ganad_clinic.screening.signoff as signoff
    from tests.store.helpers import add_score, register_model

    home, outbox = tmp_path / "home", tmp_path / "outbox"
    at = ["--home", str(home)]
    assert _run(monkeypatch, f"{SUPER[1]}\n", "users", "add", SUPER[0], "--role", "admin", "--password-stdin",
                *at) == 0
    with open_store(home=home) as store:
        slide = store.record_slide(tmp_path / "inbox" / "a.png", "aaa", 10, tmp_path / "inbox").slide
        add_score(store, slide.id, register_model(store).id, 0.1)  # not flagged: ready to sign
    sign = ["signoff", "a", "--user", SUPER[0], "--password-stdin", *at]
    capsys.readouterr()
    assert _run(monkeypatch, f"{SUPER[1]}\n", *sign, "--outbox", str(tmp_path / "nowhere")) == 1
    assert "nowhere is not a folder (missing?): nothing was signed" in capsys.readouterr().err

    outbox.mkdir()
    real_write = signoff._write_flushed

    def full_disk(path: Path, text: str) -> None:
        if path.name.endswith(".fhir.json" + signoff.PARTIAL):  # the second file: the disk fills up
            path.write_text(text[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(signoff, "_write_flushed", full_disk)
    assert _run(monkeypatch, f"{SUPER[1]}\n", *sign, "--outbox", str(outbox)) == 1
    assert "No space left on device; nothing was signed" in capsys.readouterr().err
    assert list(outbox.iterdir()) == []
    with open_store(home=home) as store:
        assert store.get_specimen("a").signature is None and store.list_audit_events("specimen.signed") == []


def test_once_there_are_users_only_a_supervisor_changes_the_operating_point(tmp_path: Path, monkeypatch, capsys):
    at = ["--home", str(tmp_path / "home")]
    assert main(["operating-point", "set", "0.1", "--reason", "before any user", *at]) == 0  # the OS account
    assert _run(monkeypatch, f"{ADMIN[1]}\n", "users", "add", ADMIN[0], "--role", "admin", "--password-stdin",
                *at) == 0
    assert _run(monkeypatch, f"{ADMIN[1]}\n{TECH[1]}\n", "users", "add", TECH[0], "--role", "technician", "--admin",
                ADMIN[0], "--password-stdin", *at) == 0
    capsys.readouterr()
    assert main(["operating-point", "set", "0.2", "--reason", "r", *at]) == 1
    assert "this database has users: say who you are" in capsys.readouterr().err
    assert _run(monkeypatch, f"{TECH[1]}\n", "operating-point", "set", "0.2", "--reason", "r", "--user", TECH[0],
                "--password-stdin", *at) == 1
    assert "tina (technician) may not change the operating point" in capsys.readouterr().err
    assert _run(monkeypatch, f"{ADMIN[1]}\n", "operating-point", "set", "0.2", "--reason", "policy", "--user",
                ADMIN[0], "--password-stdin", *at) == 0
    with open_store(home=tmp_path / "home") as store:
        setting = store.target_fpr_setting()
        assert (setting.target_fpr, setting.actor) == (0.2, ADMIN[0])
