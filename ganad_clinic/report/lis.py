"""A signed specimen's result for the laboratory information system: an HL7 v2.5.1 ORU^R01
message (hl7apy) and a FHIR DiagnosticReport (fhir.resources; its R4B models, which R4 servers
read for these two resources). Both carry the accession, one OBX / Observation per image with its
score, threshold and abnormal flag, the reviewers' decisions and notes, the signer, and the status:
final, or corrected / amended for a signature that amends an earlier one. Text is escaped by the
libraries (HL7's \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, with line breaks as \\.br\\; JSON for FHIR)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from hl7apy.base_datatypes import FT
from hl7apy.core import Message

from ganad_clinic import __version__
from ganad_clinic.model.numbers import score_text
from ganad_clinic.store import ReviewDecision, Signature, SlideStatus, SpecimenSummary

HL7_VERSION = "2.5.1"
SENDER = "GANAD Clinic"
SERVICE = ("GANAD", "Blood smear anomaly screen", "L")  # OBR-4: the lab's local code
SCORE_CODE = ("GANAD-SCORE", "Anomaly score", "L")
ACCESSION_SYSTEM = "urn:ganad-clinic:accession"
MESSAGE_SYSTEM = "urn:ganad-clinic:result-message"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SECTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0074"
DECISIONS = {ReviewDecision.ANOMALY_CONFIRMED: "anomaly confirmed", ReviewDecision.NORMAL: "normal (flag overruled)",
             ReviewDecision.SECOND_READ: "second read needed"}


@dataclass(frozen=True)
class ImageResult:
    """One image of the specimen as the messages say it."""

    number: int
    file_name: str
    score: float | None
    threshold: float | None
    abnormal: bool  # flagged and not overruled, or confirmed by a reviewer
    words: str  # flag, cells, review and note in a sentence


def image_results(specimen: SpecimenSummary) -> list[ImageResult]:
    """The images that were scored (a rejected file replaced since is left out: its replacement counts)."""
    results: list[ImageResult] = []
    for summary in specimen.slides:
        slide, score, review = summary.slide, summary.score, summary.review
        if slide.status is SlideStatus.REJECTED and summary.replaced_by_id is not None:
            continue
        decision = None if review is None else review.decision
        flagged = score is not None and score.flagged
        abnormal = decision is ReviewDecision.ANOMALY_CONFIRMED or (flagged and decision is not ReviewDecision.NORMAL)
        parts = [f"{slide.file_name}: {'flagged' if flagged else 'not flagged'}"]
        if summary.cells > 1:
            parts.append(f"{summary.flagged_cells} of {summary.cells} cells flagged")
        if review is not None:
            parts.append(f"review: {DECISIONS[review.decision]} by {review.reviewer}")
            if review.note:
                parts.append(f"note: {review.note}")
        results.append(ImageResult(len(results) + 1, slide.file_name, None if score is None else score.score,
                                   None if score is None else score.threshold, abnormal, "; ".join(parts)))
    return results


def _hl7_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y%m%d%H%M%S%z")


def _text(value: str) -> str:
    """Free text for an HL7 field: the encoding characters escaped, line breaks as \\.br\\."""
    return "\\.br\\".join(FT(line).to_er7() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def oru_r01(specimen: SpecimenSummary, signature: Signature, *, lab: str = "") -> str:
    """The ORU^R01 message of a signature (ER7, segments ended by carriage returns)."""
    status = "C" if signature.amends_id is not None else "F"
    accession = _text(specimen.specimen.accession)
    message = Message("ORU_R01", version=HL7_VERSION)
    message.msh.msh_3 = _text(SENDER)
    message.msh.msh_4 = _text(lab)
    message.msh.msh_5 = "LIS"
    message.msh.msh_7 = _hl7_time(signature.signed_at)
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = signature.message_id
    message.msh.msh_11 = "P"
    message.msh.msh_12 = HL7_VERSION
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    patient = result.add_group("ORU_R01_PATIENT")
    patient.pid.pid_1 = "1"
    patient.pid.pid_3 = f"{accession}^^^{_text(SENDER)}^AN"  # the patient is the LIS's: matched by accession
    patient.pid.pid_5 = "^^^^^^U"  # name not known here (U: unspecified)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    order.obr.obr_2 = accession
    order.obr.obr_3 = accession
    order.obr.obr_4 = "^".join(SERVICE)
    order.obr.obr_22 = _hl7_time(signature.signed_at)
    order.obr.obr_24 = "HM"
    order.obr.obr_25 = status
    order.obr.obr_32 = _text(signature.printed_name)
    summary = order.add_segment("NTE")
    summary.nte_1 = "1"
    summary.nte_3 = _text(_conclusion(specimen, signature))
    for image in image_results(specimen):
        observation = order.add_group("ORU_R01_OBSERVATION")
        obx = observation.obx
        obx.obx_1 = str(image.number)
        obx.obx_2 = "NM"
        obx.obx_3 = "^".join(SCORE_CODE)
        obx.obx_4 = str(image.number)
        if image.score is not None:
            obx.obx_5 = score_text(image.score)
        if image.threshold is not None:
            obx.obx_7 = f"<={score_text(image.threshold)}"
        obx.obx_8 = "A" if image.abnormal else "N"
        obx.obx_11 = status
        obx.obx_14 = _hl7_time(signature.signed_at)
        note = observation.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = _text(image.words)
    return message.to_er7() + "\r"


def _conclusion(specimen: SpecimenSummary, signature: Signature) -> str:
    images = image_results(specimen)
    abnormal = sum(image.abnormal for image in images)
    amended = " (amended)" if signature.amends_id is not None else ""
    point = "" if signature.target_fpr is None else f" at an operating point of {signature.target_fpr:g}"
    return (f"Specimen {specimen.specimen.accession}: {signature.finding}{amended}; {abnormal} of {len(images)} images "
            f"abnormal. Screened by GANAD Clinic {__version__} with model {signature.model_version or '?'}{point}; "
            f"signed by {signature.printed_name} ({signature.role}): {signature.meaning}")


def diagnostic_report(specimen: SpecimenSummary, signature: Signature, *, pdf: bytes | None = None) -> str:
    """The FHIR DiagnosticReport of a signature, as JSON (validated by fhir.resources)."""
    status = "amended" if signature.amends_id is not None else "final"
    observations = []
    for image in image_results(specimen):
        observation: dict = {
            "resourceType": "Observation", "id": f"image-{image.number}", "status": status,
            "code": {"coding": [{"system": "urn:ganad-clinic:code", "code": SCORE_CODE[0], "display": SCORE_CODE[1]}]},
            "interpretation": [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": "A" if image.abnormal else "N"}]}],
            "note": [{"text": image.words}],
        }
        if image.score is not None:
            observation["valueQuantity"] = {"value": round(image.score, 3)}
        if image.threshold is not None:
            observation["referenceRange"] = [{"high": {"value": round(image.threshold, 3)}}]
        observations.append(observation)
    report: dict = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": MESSAGE_SYSTEM, "value": signature.message_id}],
        "status": status,
        "category": [{"coding": [{"system": SECTION_SYSTEM, "code": "HM", "display": "Hematology"}]}],
        "code": {"coding": [{"system": "urn:ganad-clinic:code", "code": SERVICE[0], "display": SERVICE[1]}]},
        "specimen": [{"identifier": {"system": ACCESSION_SYSTEM, "value": specimen.specimen.accession},
                      "display": specimen.specimen.accession}],
        "issued": signature.signed_at.isoformat(),
        "resultsInterpreter": [{"display": signature.printed_name}],
        "contained": observations,
        "result": [{"reference": f"#{observation['id']}"} for observation in observations],
        "conclusion": _conclusion(specimen, signature),
    }
    if pdf is not None:
        report["presentedForm"] = [{"contentType": "application/pdf", "title": f"{specimen.specimen.accession}.pdf",
                                    "data": base64.b64encode(pdf).decode("ascii")}]
    return json.dumps(json.loads(DiagnosticReport.model_validate(report).model_dump_json()), indent=2,
                      ensure_ascii=False) + "\n"
