"""The acceptance report: one model's acceptance check as a PDF of a page or two (reportlab).

It says what the check said (screening.acceptance): the two models, the operating point, each
figure with its 95 % interval and the counts it rests on, the differences, the verdict with its
refusals, and what the evidence was. Text from the registry goes through `ReportFonts.markup`.
"""

from __future__ import annotations

import os
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ganad_clinic import __version__
from ganad_clinic.files import atomic_output
from ganad_clinic.report.fonts import ReportFonts, report_fonts
from ganad_clinic.screening.acceptance import (
    FIGURE_TITLES,
    FIGURES,
    MIN_ANOMALIES,
    MIN_NORMALS,
    AcceptanceCheck,
    evidence_words,
    operating_point_words,
)
from ganad_clinic.store import ModelVersion

MARGIN = 1.8 * cm
FRAME_WIDTH = A4[0] - 2 * MARGIN
KEY_WIDTH = 4.0 * cm
GRID = colors.HexColor("#bbbbbb")
HEADER_FILL = colors.HexColor("#e4e9f0")
ACCEPTED = colors.HexColor("#1b6e20")
REFUSED = colors.HexColor("#8b0000")


def write_acceptance_report(check: AcceptanceCheck, path: str | os.PathLike[str]) -> Path:
    """Lay out `check` and write it to `path` atomically; returns `path`."""
    path = Path(path)
    fonts = report_fonts()
    with atomic_output(path) as partial:
        document = SimpleDocTemplate(
            str(partial), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
            title=f"Acceptance check of model {check.candidate.version}", creator=f"GANAD Clinic {__version__}")
        document.build(_story(check, fonts))
    return path


def _story(check: AcceptanceCheck, fonts: ReportFonts) -> list[Flowable]:
    body = ParagraphStyle("body", fontName=fonts.regular, fontSize=9, leading=11.5)
    heading = ParagraphStyle("heading", body, fontName=fonts.bold, fontSize=12, leading=15, spaceBefore=10,
                             spaceAfter=4)
    title = ParagraphStyle("title", body, fontName=fonts.bold, fontSize=17, leading=21, spaceAfter=6)
    verdict_style = ParagraphStyle("verdict", body, fontName=fonts.bold, fontSize=12, leading=15,
                                   textColor=ACCEPTED if check.accepted else REFUSED)
    version = fonts.markup(check.candidate.version)
    story: list[Flowable] = [
        Paragraph(f"Acceptance check of model {version}", title),
        _key_values([
            ("Candidate", _model_words(check.candidate, fonts)),
            ("Active model", "none other: the candidate is judged on its own figures and the minimums"
             if check.active is None else _model_words(check.active, fonts)),
            ("Operating point", operating_point_words(check)),
            ("Checked", f"{check.checked_at:%Y-%m-%d %H:%M %Z}".strip()),
        ], body),
        Paragraph("Verdict", heading),
        Paragraph("Accepted" if check.accepted else "Refused", verdict_style),
    ]
    story += [Paragraph(fonts.markup(f"• {refusal}"), body) for refusal in check.refusals]
    story += [Paragraph("Figures", heading), _figures_table(check, body), Spacer(1, 4),
              Paragraph(f"95 % intervals: {check.resamples} bootstrap resamples (seed {check.seed}), stratified by "
                        "class and paired: both models are judged on the same resamples. A candidate is refused "
                        "when a difference's upper bound is below 0.", body)]
    story += [Paragraph("Evidence", heading), Paragraph(evidence_words(check.evidence), body), Spacer(1, 3),
              Paragraph(f"The check needs at least {MIN_NORMALS} normal and {MIN_ANOMALIES} confirmed anomalous "
                        "slides. Evidence: reviewed slides (latest review normal or anomaly confirmed) whose "
                        "content the candidate's training did not use, and the candidate's calibration normals "
                        "that the store holds; its specificity on those is favoured, as they set its threshold.",
                        body)]
    return story


def _model_words(model: ModelVersion, fonts: ReportFonts) -> str:
    return f"{fonts.markup(model.version)} (sha256 {model.sha256[:12]}…)"


def _key_values(items: list[tuple[str, str]], style: ParagraphStyle) -> Table:
    bold = ParagraphStyle("key", style, fontName=report_fonts().bold)
    rows = [[Paragraph(key, bold), Paragraph(value, style)] for key, value in items]
    table = Table(rows, colWidths=[KEY_WIDTH, FRAME_WIDTH - KEY_WIDTH], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID)]))
    return table


def _figures_table(check: AcceptanceCheck, style: ParagraphStyle) -> Table:
    columns = [("Candidate", check.candidate_figures)]
    if check.active_figures is not None:
        columns.append(("Active", check.active_figures))
    header = ["", *(title for title, _ in columns)] + (["Difference (candidate - active)"] if check.differences
                                                        else [])
    rows = [header]
    for name in FIGURES:
        row = [FIGURE_TITLES[name], *(figures.figure(name).words() for _, figures in columns)]
        if check.differences:
            row.append(check.differences[name].words())
        rows.append(row)
    figures = check.candidate_figures
    rows.append(["Rests on", *(f"{figures.n_normal} normal, {figures.n_anomalous} anomalous" for _ in columns)]
                + ([""] if check.differences else []))
    cells = [[Paragraph(text, style) for text in row] for row in rows]
    width = (FRAME_WIDTH - 2.6 * cm) / (len(header) - 1)
    table = Table(cells, colWidths=[2.6 * cm] + [width] * (len(header) - 1), hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table
