"""The screening report's PDF layout (reportlab platypus).

Every piece of text from the database goes through `ReportFonts.markup`, so markup characters and
any script print as they are. Table cells hold short text only (long reasons are shortened; notes
live outside tables), so no cell can outgrow a page and raise a LayoutError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, cast

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ganad_clinic import __version__
from ganad_clinic.files import atomic_output
from ganad_clinic.imaging.overlay import FLAGGED_COLOUR, NORMAL_COLOUR, CellBox, cell_colour
from ganad_clinic.model.conformal import percent
from ganad_clinic.model.numbers import score_text
from ganad_clinic.report.charts import heat_legend, score_histogram
from ganad_clinic.report.content import CellRow, ModelInfo, ReportContent, SlideRow
from ganad_clinic.report.fonts import ReportFonts, printable, report_fonts, visual
from ganad_clinic.report.thumbnails import Thumbnail, field_pictures, image_box, picture_box, placeholder
from ganad_clinic.store import ReviewDecision, SlideStatus

DISCLAIMER = (
    "This report is a screening aid, not a diagnosis. A flag means the model found the slide unlike the "
    "normal slides it was trained on; every flag must be reviewed by a qualified person, and an unflagged "
    "slide is not proof of a normal sample."
)
PAGE_SIZE = A4
MARGIN = 1.8 * cm
FRAME_WIDTH = PAGE_SIZE[0] - 2 * MARGIN
MAX_CELL_CHARS = 300
LONG_NOTE_CHARS = 600  # a longer note may start on the images' page and run on
IMAGE_BOX = 4.2 * cm
GRID = colors.HexColor("#bbbbbb")
HEADER_FILL = colors.HexColor("#e4e9f0")
FLAG_FILL = colors.HexColor("#fbe3e6")
NOTE_FILL = colors.HexColor("#fff4d6")
FOOTER_SIZE = 7.5
FOOTER_COLOUR = colors.HexColor("#555555")
FOOTER_MAX_CHARS = 200  # far more than fits on one line; keeps fitting fast
CELL_PADDING = 12  # reportlab's table cells: 6 points each side
CELL_SIZE = 7.5
DETAILS_SIZE = 8
KEY_WIDTH = 3.2 * cm


class _Styles:
    def __init__(self, fonts: ReportFonts) -> None:
        base = ParagraphStyle("body", fontName=fonts.regular, fontSize=9, leading=11.5, splitLongWords=True)
        self.body = base
        self.title = ParagraphStyle("title", base, fontName=fonts.bold, fontSize=18, leading=22, spaceAfter=2)
        self.subtitle = ParagraphStyle("subtitle", base, fontSize=12, leading=15, spaceAfter=8)
        self.heading = ParagraphStyle("heading", base, fontName=fonts.bold, fontSize=12, leading=15,
                                      spaceBefore=12, spaceAfter=5)
        self.cell = ParagraphStyle("cell", base, fontSize=CELL_SIZE, leading=9)
        self.cell_bold = ParagraphStyle("cell_bold", self.cell, fontName=fonts.bold)
        self.small = ParagraphStyle("small", base, fontSize=8, leading=10)
        self.disclaimer = ParagraphStyle("disclaimer", base, fontName=fonts.bold, fontSize=9.5, leading=12.5,
                                         borderColor=colors.HexColor("#8b0000"), borderWidth=0.8,
                                         borderPadding=6, leftIndent=6, rightIndent=6,
                                         backColor=colors.HexColor("#fdf2f2"),
                                         spaceBefore=8, spaceAfter=10)
        self.warning = ParagraphStyle("warning", base, textColor=colors.HexColor("#8b0000"))
        self.note = ParagraphStyle("note", self.small, backColor=NOTE_FILL, borderPadding=3, leftIndent=3,
                                   rightIndent=3, spaceBefore=2)
        self.details = ParagraphStyle("details", base, fontSize=DETAILS_SIZE, leading=11.5)
        self.caution = ParagraphStyle("caution", self.details, textColor=colors.HexColor("#8b0000"))
        self.empty = ParagraphStyle("empty", base, fontSize=10.5, leading=13, spaceBefore=14, spaceAfter=4)


def write_pdf(content: ReportContent, path: str | os.PathLike[str]) -> int:
    """Lay out `content` and write it to `path` atomically; returns the number of pages."""
    fonts = report_fonts()
    styles = _Styles(fonts)
    story = _story(content, fonts, styles)
    with atomic_output(path) as partial:
        document = SimpleDocTemplate(
            str(partial), pagesize=PAGE_SIZE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
            bottomMargin=MARGIN + 0.4 * cm, title=printable(f"Screening report {content.lab}".strip()),
            author=printable(content.operator), subject=printable(content.period),
            creator=f"GANAD Clinic {__version__}",
        )
        footer = _footer(content)
        document.build(story, onFirstPage=footer, onLaterPages=footer, canvasmaker=_NumberedCanvas)
        return document.page


class _NumberedCanvas(Canvas):
    """Holds pages back until the end, so each can say "page X of Y"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held_pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._held_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held_pages)
        for state in self._held_pages:
            self.__dict__.update(state)
            self.setFont(report_fonts().regular, FOOTER_SIZE)
            self.setFillColor(FOOTER_COLOUR)
            self.drawRightString(PAGE_SIZE[0] - MARGIN, MARGIN - 0.2 * cm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def _footer(content: ReportContent) -> Callable[[Canvas, SimpleDocTemplate], None]:
    fonts = report_fonts()
    lab = visual(printable(content.lab or "GANAD Clinic").replace("\n", " "))
    text = _fit(f"{lab} · screening report printed {content.printed_at:%Y-%m-%d %H:%M} · a screening aid, "
                "not a diagnosis", fonts.regular, FOOTER_SIZE, FRAME_WIDTH - 3 * cm)

    def draw(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setStrokeColor(GRID)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, MARGIN + 0.15 * cm, PAGE_SIZE[0] - MARGIN, MARGIN + 0.15 * cm)
        canvas.setFont(fonts.regular, FOOTER_SIZE)
        canvas.setFillColor(FOOTER_COLOUR)
        canvas.drawString(MARGIN, MARGIN - 0.2 * cm, text)
        canvas.restoreState()

    return draw


def _fit(text: str, font: str, size: float, width: float) -> str:
    """`text` shortened with an ellipsis to fit `width` on one line (footers cannot wrap)."""
    if stringWidth(text, font, size) <= width:
        return text
    text = text[:FOOTER_MAX_CHARS]
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _story(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    story: list[Flowable] = [
        Paragraph("Screening report", styles.title),
        Paragraph(fonts.markup(content.lab or "Laboratory not named", FRAME_WIDTH, styles.subtitle.fontSize),
                  styles.subtitle),
        _key_values(_header_items(content, fonts), styles),
        Paragraph(DISCLAIMER, styles.disclaimer),
    ]
    story += _model_section(content, fonts, styles)
    story += _summary_section(content, fonts, styles)
    if content.is_empty:
        story.append(Paragraph(
            "<b>This report is empty:</b> no slides were received in this period"
            + (" from this folder" if content.folder else "")
            + (" that were flagged" if content.flagged_only else "") + ".", styles.empty))
    else:
        story += _histogram_section(content, fonts, styles)
        story += _slides_section(content, fonts, styles)
        story += _rejected_section(content, fonts, styles)
        story += _flagged_section(content, fonts, styles)
    story += _sign_off(content, fonts, styles)
    story += _model_details_section(content, fonts, styles)
    return story


def _header_items(content: ReportContent, fonts: ReportFonts) -> list[tuple[str, str]]:
    width = FRAME_WIDTH - KEY_WIDTH - CELL_PADDING
    items = [
        ("Period", fonts.markup(_short(content.period))),
        ("Printed", f"{content.printed_at:%Y-%m-%d %H:%M %Z}".strip()),
        ("Printed by", fonts.markup(_short(content.operator) or "not named", width, CELL_SIZE)),
    ]
    if content.folder:
        items.append(("Folder", fonts.markup(_short(content.folder), width, CELL_SIZE)))
    if content.flagged_only:
        items.append(("Selection", "flagged slides only"))
    return items


def _key_values(items: Iterable[tuple[str, str]], styles: _Styles, key_width: float = KEY_WIDTH) -> Table:
    rows = [[Paragraph(key, styles.cell_bold), Paragraph(value, styles.cell)] for key, value in items]
    table = Table(rows, colWidths=[key_width, FRAME_WIDTH - key_width], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _model_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    """What flags a slide, in a technician's words; the model's identity and formula are at the end
    (`_model_details_section`)."""
    flow: list[Flowable] = [Paragraph("Model", styles.heading)]
    if not content.models:
        return flow + [Paragraph("No model is registered, and no slide in this period was scored.", styles.body)]
    if len(content.models) > 1:
        flow.append(Paragraph(
            f"<b>Scores in this period came from {len(content.models)} model versions</b>, so scores of "
            "different slides may not be comparable. Versions, most used first:", styles.warning))
        flow.append(Spacer(1, 4))
    elif content.counts.scored == 0:
        flow.append(Paragraph("No slide in this period was scored; the active model is:", styles.body))
    for model in content.models:
        flow.append(_key_values(_model_items(model, content, fonts, several=len(content.models) > 1), styles))
        flow.append(Spacer(1, 6))
    return flow


def _model_items(model: ModelInfo, content: ReportContent, fonts: ReportFonts, several: bool) -> list[tuple[str, str]]:
    version = fonts.markup(_short(model.version))
    items = [("Version", version + (f" ({model.slides_scored} slides scored)" if several else ""))]
    threshold = "unknown" if model.threshold is None else score_text(model.threshold)
    items.append(("Flags a slide when", f"its score is above {threshold} (each cell of a field is judged against "
                                        "a higher threshold: the more cells, the higher)"))
    targets = sorted({row.target_fpr for row in content.rows
                      if row.target_fpr is not None and row.model_version == model.version})
    if targets:
        items.append(("Operating point", "at most " + " or ".join(percent(target) for target in targets)
                      + " of normal slides flagged (the rate stated when they were scored)"))
    if model.problem:
        items.append(("Note", fonts.markup(_short(model.problem))))
    return items


def _model_details_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    """The models for checking: the weights' digest, the threshold's rule and the score's formula."""
    if not content.models:
        return []
    flow: list[Flowable] = [CondPageBreak(3 * cm), Paragraph("Model details, for checking", styles.heading)]
    for model in content.models:
        flow.append(_key_values(_model_detail_items(model, fonts), styles))
        flow.append(Spacer(1, 6))
    return flow


def _model_detail_items(model: ModelInfo, fonts: ReportFonts) -> list[tuple[str, str]]:
    items = [("Version", fonts.markup(_short(model.version))),
             ("sha256", f"{model.short_sha256}… (weights file)")]
    threshold = "unknown" if model.threshold is None else f"{model.threshold:.6g}"
    if model.threshold_rule:
        threshold += f" — {fonts.markup(_short(model.threshold_rule))}"
    items.append(("Threshold", threshold))
    others = [value for value in model.thresholds_in_force
              if model.threshold is None or abs(value - model.threshold) > 1e-12]
    if others:
        items.append(("Thresholds in force", ", ".join(f"{value:.6g}" for value in model.thresholds_in_force)
                      + " (as stored with the scores)"))
    lam, beta = fonts.markup("λ"), fonts.markup("β")  # the fallback main font has no Greek
    weights = "unknown" if model.lam is None else f"{lam} = {model.lam:g}"
    weights += "" if model.beta is None else f", {beta} = {model.beta:g}"
    if model.score_mode:
        weights += f" ({fonts.markup(_short(model.score_mode))} terms)"
    formula = f"{lam}·L<sub>D</sub> + (1−{lam})·L<sub>R</sub> + {beta}·L<sub>L</sub>"
    items.append(("Score A(x)", f"{formula}; {weights}"))
    return items


DRIFT_EVENTS_SHOWN = 5  # the latest drift alarms said in the summary; the audit trail keeps them all


def _summary_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    counts = content.counts
    awaiting = str(counts.flags_awaiting_review)
    if counts.flags_second_read:
        awaiting += f" (of which {counts.flags_second_read} marked for a second read)"
    items = [
        ("Slides received", str(counts.slides)),
        ("Scored", str(counts.scored)),
        ("Flagged", str(counts.flagged)),
        ("Rejected (not scorable)", str(counts.rejected)),
    ]
    if counts.pending:
        items.append(("Not scored yet", str(counts.pending)))
    items += [
        ("Reviewed", str(counts.reviewed)),
        ("Flags confirmed", str(counts.flags_confirmed)),
        ("Flags overruled", str(counts.flags_overruled)),
        ("Flags awaiting review", awaiting),
    ]
    if counts.unflagged_confirmed:
        items.append(("Not flagged, but anomalous on review", str(counts.unflagged_confirmed)))
    items.append(("Drift alarm", _drift_text(content)))
    flow: list[Flowable] = [Paragraph("Summary", styles.heading), _key_values(items, styles, key_width=6.5 * cm)]
    alarms = content.drift_alarms
    for alarm in alarms[-DRIFT_EVENTS_SHOWN:]:
        message = alarm.message.removeprefix("drift alarm: ")  # the heading says it already
        flow.append(Paragraph(f"Drift alarm {alarm.time:%Y-%m-%d %H:%M}, model "
                              f"{fonts.markup(_short(alarm.model_version))}: {fonts.markup(_short(message))}",
                              styles.warning))
    if len(alarms) > DRIFT_EVENTS_SHOWN:
        flow.append(Paragraph(f"… and {len(alarms) - DRIFT_EVENTS_SHOWN} earlier drift alarms (see the audit trail).",
                              styles.small))
    return flow


def _drift_text(content: ReportContent) -> str:
    """Whether the screening service's drift alarm was raised in the period, and is still."""
    raised = len(content.drift_alarms)
    if not raised:
        return "none raised in this period"
    text = f"<b>raised {raised} time{'s' if raised != 1 else ''} in this period</b>"
    if content.drift_events[-1].raised:
        text += ", still raised at its end"
    return text + " (stain, focus or scanner change, or a run of abnormal samples: worth a look)"


def _histogram_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    thresholds = sorted({row.threshold for row in content.rows if row.threshold is not None})
    chart = score_histogram(content.scores, thresholds, FRAME_WIDTH, 5.2 * cm, fonts.regular)
    caption = Paragraph("Bars above the lowest threshold in force are red; the dashed lines are the thresholds in "
                        "force (a slide of more cells has a higher one: each cell is judged at the target rate divided "
                        "by their number).", styles.small)
    return [KeepTogether([Paragraph("Distribution of scores", styles.heading), chart, caption])]


SLIDE_COLUMNS = ("File", "Received", "Score", "Flag", "Review", "Reviewer", "Note")
SLIDE_WIDTHS = (4.1 * cm, 2.8 * cm, 1.3 * cm, 1.1 * cm, 2.9 * cm, 2.3 * cm, 2.9 * cm)
"""Received is wide enough for "2026-12-02 23:31" at the table's size (at 2.5 cm it ran into the score)."""


def table_order(row: SlideRow) -> int:
    """Flagged slides awaiting review first, then the other flagged ones, then the rest; each
    group in arrival order (the rows' own)."""
    awaiting = row.decision is None or row.decision is ReviewDecision.SECOND_READ
    return 0 if row.flagged and awaiting else 1 if row.flagged else 2


def _slides_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    header = [Paragraph(name, styles.cell_bold) for name in SLIDE_COLUMNS]
    rows: list[list[Any]] = [header]
    flagged_lines = []
    for index, row in enumerate(sorted(content.rows, key=table_order), start=1):
        rows.append([
            Paragraph(fonts.markup(row.file_name, SLIDE_WIDTHS[0] - CELL_PADDING, CELL_SIZE), styles.cell),
            f"{row.received:%Y-%m-%d %H:%M}",
            _score_text(row),
            "FLAG" if row.flagged else "",
            row.decision_label,
            Paragraph(fonts.markup(_short(row.reviewer or ""), SLIDE_WIDTHS[5] - CELL_PADDING, CELL_SIZE), styles.cell),
            Paragraph(fonts.markup(_short(row.review_note), SLIDE_WIDTHS[6] - CELL_PADDING, CELL_SIZE), styles.cell),
        ])
        if row.flagged:
            flagged_lines.append(index)
    table = LongTable(rows, colWidths=SLIDE_WIDTHS, repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), fonts.regular, 7.5, 9),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
        ("ALIGN", (2, 1), (2, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    style += [("BACKGROUND", (0, line), (-1, line), FLAG_FILL) for line in flagged_lines]
    style += [("FONT", (3, line), (3, line), fonts.bold, 7.5, 9) for line in flagged_lines]
    table.setStyle(TableStyle(style))
    return [CondPageBreak(4 * cm), Paragraph(f"All slides ({len(content.rows)})", styles.heading),
            Paragraph("Flagged slides awaiting review first, then the other flagged slides, then the rest; each group "
                      "in the order the slides arrived.", styles.small), table]


def _score_text(row: SlideRow) -> str:
    if row.score is not None:
        return score_text(row.score)
    return "rejected" if row.status is SlideStatus.REJECTED else "pending"


def _rejected_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    rejected = content.rejected_rows
    if not rejected:
        return []
    widths = (5.4 * cm, 2.7 * cm, FRAME_WIDTH - 8.1 * cm)
    rows: list[list[Any]] = [[Paragraph(name, styles.cell_bold) for name in ("File", "Received", "Reason")]]
    for row in rejected:
        rows.append([
            Paragraph(fonts.markup(row.file_name, widths[0] - CELL_PADDING, CELL_SIZE), styles.cell),
            f"{row.received:%Y-%m-%d %H:%M}",
            Paragraph(fonts.markup(_short(row.reason or "no reason recorded"), widths[2] - CELL_PADDING, CELL_SIZE),
                      styles.cell),
        ])
    table = LongTable(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), fonts.regular, 7.5, 9),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
    ]))
    return [CondPageBreak(3 * cm), Paragraph(f"Rejected files ({len(rejected)})", styles.heading), table]


def _flagged_section(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    flagged = content.flagged_rows
    if not flagged:
        return []
    flow: list[Flowable] = [
        CondPageBreak(8 * cm),
        Paragraph(f"Flagged slides ({len(flagged)})", styles.heading),
        Paragraph("Each flagged slide beside its heat map. A field is shown whole with each of its cells boxed "
                  f"and numbered ({_colour_word(FLAGGED_COLOUR, 'vermillion')}: the cell is flagged, its score "
                  f"above the slide's threshold; {_colour_word(NORMAL_COLOUR, 'blue')}: not), then its flagged cells "
                  "close up, highest score first. The heat-map colours use one fixed scale for every slide, anchored "
                  "to the model's normal slides:", styles.small),
        Spacer(1, 4),
        heat_legend(FRAME_WIDTH * 0.75, fonts.regular),
        Spacer(1, 6),
    ]
    for row in flagged:
        flow += _flagged_block(row, fonts, styles)
    return flow


DETAILS_WIDTH = FRAME_WIDTH - 2 * (IMAGE_BOX + 0.3 * cm) - CELL_PADDING
"""The width of a flagged slide's figures, beside its two images."""
OVERVIEW_BOX = 9.4 * cm
FIELD_DETAILS_WIDTH = FRAME_WIDTH - (OVERVIEW_BOX + 0.3 * cm) - CELL_PADDING
"""The width of a flagged field's figures, beside its overview."""
CROPS_SHOWN = 6
"""At most this many flagged cells of a field are shown close up; the rest are boxed in the overview."""
CROP_COLUMN = FRAME_WIDTH / CROPS_SHOWN
CROP_BOX = CROP_COLUMN - 0.4 * cm
NOTE_WIDTH = FRAME_WIDTH - 6 - 30  # the note style's indents (3 + 3), and room for its "Note:" label
CAUTION_LABEL = 40  # room for a warning's "Caution:" label


def _flagged_block(row: SlideRow, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    """The slide's pictures and figures, kept on one page with its note unless the note is long."""
    block = _field_figures(row, fonts, styles) if row.shows_cells else [_slide_figures(row, fonts, styles)]
    if row.review_note.strip():
        block.append(Paragraph(f"<b>Note:</b> {fonts.markup(row.review_note, NOTE_WIDTH, styles.note.fontSize)}",
                               styles.note))
    if len(row.review_note) > LONG_NOTE_CHARS:
        return [*block, Spacer(1, 6)]
    return [KeepTogether(block), Spacer(1, 6)]


def _slide_figures(row: SlideRow, fonts: ReportFonts, styles: _Styles) -> Table:
    """A crop (or a score stored before cells were kept): the slide and its heat map, whole."""
    slide = image_box(row.path, IMAGE_BOX, "slide image\nnot found", fonts.regular)
    heat = image_box(row.heatmap_path, IMAGE_BOX, "heat map\nnot found", fonts.regular)
    return _figures_table([slide, heat, _details(row, fonts, styles, DETAILS_WIDTH)],
                          (IMAGE_BOX + 0.3 * cm, IMAGE_BOX + 0.3 * cm, None))


def _field_figures(row: SlideRow, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    """A field: its heat map with every cell boxed and numbered, then its flagged cells close up,
    cut from the same heat map."""
    assert row.slide_width is not None and row.threshold is not None  # a flagged field with cells has both
    shown = row.flagged_cells[:CROPS_SHOWN]
    pictures = field_pictures(row.heatmap_path, row.slide_width, [_box(cell) for cell in row.cells],
                              [_box(cell) for cell in shown])
    overview: Flowable = (placeholder(IMAGE_BOX, "heat map\nnot found", fonts.regular) if pictures is None
                          else picture_box(pictures.overview, OVERVIEW_BOX))
    crops = (None,) * len(shown) if pictures is None else pictures.crops
    flow: list[Flowable] = [_figures_table([overview, _details(row, fonts, styles, FIELD_DETAILS_WIDTH)],
                                           (OVERVIEW_BOX + 0.3 * cm, None))]
    if shown:
        flow.append(Paragraph("Flagged cells close up, highest score first:", styles.small))
        flow.append(_crops_table(row, shown, crops, fonts, styles))
    hidden = len(row.flagged_cells) - len(shown)
    if hidden:
        flow.append(Paragraph(f"… and {hidden} more flagged cell{'s' if hidden != 1 else ''}, boxed in "
                              f"{_colour_word(FLAGGED_COLOUR, 'vermillion')} in the overview.", styles.small))
    return flow


def _box(cell: CellRow) -> CellBox:
    return CellBox(cell.number, cell.x, cell.y, cell.width, cell.height, cell.flagged)


def _crops_table(row: SlideRow, cells: tuple[CellRow, ...], crops: tuple[Thumbnail | None, ...],
                 fonts: ReportFonts, styles: _Styles) -> Table:
    """One column per flagged cell of `row`: its close-up, then its number on a label coloured as
    its box in the overview, its score, the threshold and its p-value in words (when kept)."""
    threshold = cast(float, row.threshold)  # a field shown cell by cell has a score
    columns = []
    for cell, crop in zip(cells, crops):
        picture = placeholder(CROP_BOX, "no picture", fonts.regular) if crop is None else picture_box(crop, CROP_BOX)
        label = _colour_label(f"cell {cell.number}", cell_colour(cell.flagged), fonts)
        figures = f"score <b>{score_text(cell.score)}</b><br/>threshold {score_text(threshold)}"
        words = row.p_value_text(cell.p_value)
        if words is not None:
            figures += f"<br/>p = {cell.p_value:.3g}: {words}"
        columns.append([picture, Paragraph(label, styles.small), Paragraph(figures, styles.small)])
    table = Table([columns], colWidths=[CROP_COLUMN] * len(columns), hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
    ]))
    return table


def _figures_table(columns: list[Any], widths: tuple[float | None, ...]) -> Table:
    table = Table([columns], colWidths=widths, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("LINEABOVE", (0, 0), (-1, 0), 0.5, GRID),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
    ]))
    return table


def _details(row: SlideRow, fonts: ReportFonts, styles: _Styles, width: float) -> list[Paragraph]:
    review = "awaiting review"
    if row.decision is not None:
        review = f"{row.decision_label} by {fonts.markup(_short(row.reviewer or ''))}"
        if row.reviewed_at is not None:
            review += f", {row.reviewed_at:%Y-%m-%d %H:%M}"
    cells = [f"{len(row.flagged_cells)} of {len(row.cells)} cells flagged"] if row.shows_cells else []
    words = row.slide_p_value_text
    lines = [
        f"<b>{fonts.markup(row.file_name, width, DETAILS_SIZE, bold=True)}</b>",
        f"Received {row.received:%Y-%m-%d %H:%M} · slide #{row.slide_id}",
        f"<b>Score {score_text(row.score)}</b> (threshold {score_text(row.threshold)})",
        *([] if words is None else [f"Slide p = {row.p_value:.3g}: {words}"]),
        *cells,
        f"L<sub>D</sub> {score_text(row.l_d)} · L<sub>R</sub> {score_text(row.l_r)} · "
        f"L<sub>L</sub> {score_text(row.l_l)}",
        *([f"Scored by {fonts.markup(row.tiling)}"] if row.tiling else []),
        f"Model {fonts.markup(row.model_version or '?')}",
        f"Review: <b>{review}</b>",
    ]
    details = [Paragraph(line, styles.details) for line in lines]
    if row.warning:
        warning = fonts.markup(row.warning, width - CAUTION_LABEL, DETAILS_SIZE)
        details.append(Paragraph(f"<b>Caution:</b> {warning}", styles.caution))
    return details


def _colour_label(text: str, colour: tuple[int, int, int], fonts: ReportFonts) -> str:
    """`text` in white on `colour`, like a cell's number label in the overview."""
    return f'<font name="{fonts.bold}" color="white" backColor="{_hex(colour)}">&nbsp;{text}&nbsp;</font>'


def _colour_word(colour: tuple[int, int, int], word: str) -> str:
    return f'<font color="{_hex(colour)}"><b>{word}</b></font>'


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _sign_off(content: ReportContent, fonts: ReportFonts, styles: _Styles) -> list[Flowable]:
    awaiting = content.counts.flags_awaiting_review
    if content.counts.flagged == 0:
        status = "No slide in this report was flagged."
    elif awaiting == 0:
        status = "All flagged slides have been reviewed."
    else:
        status = f"<b>{awaiting} flagged slide{'s are' if awaiting != 1 else ' is'} still awaiting review.</b>"
    operator = fonts.markup(content.operator, FRAME_WIDTH * 0.8, styles.small.fontSize)
    printed_by = f"Printed by {operator}. " if content.operator else ""
    line = "_" * 28
    signed: list[Any] = [line, line, "_" * 16]
    signature = content.signature
    if signature is not None:
        amends = " (an amendment of an earlier signature)" if signature.amends_id is not None else ""
        status += (f" Specimen {fonts.markup(content.accession or '')} signed off: "
                   f"<b>{fonts.markup(signature.finding)}</b>{amends}.")
        signed = [Paragraph(f"{fonts.markup(signature.printed_name)} ({signature.role})", styles.cell),
                  Paragraph(f"Signed electronically: {fonts.markup(signature.meaning)}", styles.cell),
                  Paragraph(f"{signature.signed_at.astimezone():%Y-%m-%d %H:%M}", styles.cell)]
    rows = [
        [Paragraph("Reviewed and released by", styles.cell_bold), Paragraph("Signature", styles.cell_bold),
         Paragraph("Date", styles.cell_bold)],
        signed,
    ]
    table = Table(rows, colWidths=(FRAME_WIDTH * 0.42, FRAME_WIDTH * 0.38, FRAME_WIDTH * 0.2), hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), fonts.regular, 9),
        ("TOPPADDING", (0, 1), (-1, 1), 18),
    ]))
    return [KeepTogether([
        Paragraph("Sign-off", styles.heading),
        Paragraph(status, styles.body),
        Spacer(1, 4),
        Paragraph(printed_by + DISCLAIMER, styles.small),
        Spacer(1, 8),
        table,
    ])]


def _short(text: str, limit: int = MAX_CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
