"""Sign-off: a supervisor signs a specimen off with their password; the result goes to the LIS.

The check and the signature are one locked transaction (Store.sign_specimen): sign-off is refused
while an image is unscored, a flag unreviewed or awaiting a second read. Before it commits, the
specimen's PDF report (its signature in the sign-off block), the HL7 ORU^R01 message and the FHIR
DiagnosticReport (the PDF as its presentedForm) are written into the outbox under temporary
names (flushed to disk); only once the signature is committed are they renamed into place. A
missing, read-only or full outbox fails the sign-off with nothing signed and nothing left behind.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from ganad_clinic.errors import GanadError
from ganad_clinic.report.build import build_report
from ganad_clinic.report.lis import diagnostic_report, oru_r01
from ganad_clinic.screening.users import Permission, require, sign_in
from ganad_clinic.store import Signature, SpecimenSummary, Store

DEFAULT_MEANING = "I reviewed this specimen's screening and release its result"
PARTIAL = ".partial"


class OutboxError(GanadError):
    """The LIS outbox cannot take the result; nothing was signed."""


@dataclass(frozen=True)
class SignedResult:
    signature: Signature
    hl7_path: Path
    fhir_path: Path
    pdf_path: Path  # the specimen's report with its signature, also the DiagnosticReport's presentedForm


def sign_off(store: Store, accession: str, user_name: str, password: str, *, outbox: Path,
             meaning: str = DEFAULT_MEANING, lab: str = "") -> SignedResult:
    """Sign `accession` off as `user_name` (password checked, role a supervisor's) and send its result."""
    user = sign_in(store, user_name, password)
    require(user, Permission.SIGN)
    specimen = store.get_specimen(accession)
    if not outbox.is_dir():
        raise OutboxError(f"the LIS outbox {outbox} is not a folder (missing?): nothing was signed")
    active = store.active_model_version()
    setting = store.target_fpr_setting()
    written: dict[str, Path] = {}

    def prepare(checked: SpecimenSummary, signature: Signature) -> None:
        stem = _stem(checked, signature)
        try:
            written[".pdf"] = pdf = outbox / f"{stem}.pdf"
            build_report(store, pdf.with_name(pdf.name + PARTIAL), lab=lab, operator=f"{user.full_name} ({user.name})",
                         specimen=checked, signature=signature)
            report = pdf.with_name(pdf.name + PARTIAL).read_bytes()
            for suffix, text in ((".hl7", oru_r01(checked, signature, lab=lab)),
                                 (".fhir.json", diagnostic_report(checked, signature, pdf=report))):
                written[suffix] = target = outbox / f"{stem}{suffix}"
                _write_flushed(target.with_name(target.name + PARTIAL), text)
        except OSError as error:
            raise OutboxError(f"cannot write the result into the LIS outbox {outbox}: {error.strerror or error}; "
                              "nothing was signed") from error

    try:
        signature = store.sign_specimen(specimen.specimen.id, user, meaning=meaning, message_id=uuid.uuid4().hex,
                                        model_version=None if active is None else active.version,
                                        target_fpr=None if setting is None else setting.target_fpr, prepare=prepare)
    except BaseException:
        _remove_partials(written)
        raise
    for target in written.values():
        os.replace(target.with_name(target.name + PARTIAL), target)
    return SignedResult(signature, written[".hl7"], written[".fhir.json"], written[".pdf"])


def _stem(specimen: SpecimenSummary, signature: Signature) -> str:
    safe = "".join(character if character.isalnum() or character in "-_." else "_"
                   for character in specimen.specimen.accession)
    return f"{safe}-{signature.signed_at:%Y%m%dT%H%M%S}-{signature.message_id[:8]}"


def _write_flushed(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _remove_partials(written: dict[str, Path]) -> None:
    for target in written.values():
        target.with_name(target.name + PARTIAL).unlink(missing_ok=True)
