"""The report's slide table as CSV, for spreadsheets and laboratory systems, and beside it the
cells of each slide's current score (`<name>_cells.csv`), one line per cell.

Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
carriage return: a file named `=HYPERLINK(...).png`) get a leading single quote, as OWASP's CSV
injection advice says; the quote shows the cell is text and strips off to give the original.
Numeric columns are written as numbers, so a score of -3.1 stays -3.1. New columns go at the end,
so a laboratory system that reads the columns by position keeps reading the same ones; a value a
score does not have (a p-value of a score made before they were kept) is left empty.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from ganad_clinic.files import atomic_output
from ganad_clinic.report.content import CellRow, ReportContent, SlideRow

COLUMNS = (
    "slide_id", "file", "path", "received", "status", "score", "threshold", "flagged", "l_d", "l_r", "l_l",
    "model_version", "model_sha256", "review_decision", "reviewer", "reviewed_at", "review_note",
    "rejection_reason", "duplicate_of", "tiling", "warning", "p_value", "target_fpr", "accession",
)
CELL_COLUMNS = (
    "slide_id", "file", "score_id", "cell", "x", "y", "width", "height", "found_by", "score", "l_d", "l_r", "l_l",
    "flagged", "threshold", "p_value",
)
CELLS_SUFFIX = "_cells"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cells_csv_path(path: str | os.PathLike[str]) -> Path:
    """Where the cells file goes beside the slides file `path`: `may.csv` -> `may_cells.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}{CELLS_SUFFIX}{path.suffix or '.csv'}")


def write_csv(content: ReportContent, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write one line per slide of the report to `path` and one line per cell to the cells file
    beside it (`cells_csv_path`); returns both paths. Neither file is replaced until both are
    complete, each atomically, so an interrupted export leaves the earlier pair as it was. UTF-8
    with a byte-order mark, so spreadsheet programs read non-ASCII names correctly; numbers at
    full precision."""
    path = Path(path)
    cells_path = cells_csv_path(path)
    with atomic_output(path) as slides_partial, atomic_output(cells_path) as cells_partial:
        _write_table(slides_partial, COLUMNS, (csv_row(row) for row in content.rows))
        _write_table(cells_partial, CELL_COLUMNS,
                     (cell_csv_row(row, cell) for row in content.rows for cell in row.cells))
    return path, cells_path


def _write_table(path: Path, columns: tuple[str, ...], rows: Iterable[list[str]]) -> None:
    with open(path, "w", encoding="utf-8-sig", errors="replace", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def csv_row(row: SlideRow) -> list[str]:
    return [
        str(row.slide_id),
        _text(row.file_name),
        _text(row.path),
        row.received.isoformat(timespec="seconds"),
        row.status.value,
        _number(row.score),
        _number(row.threshold),
        "" if row.score is None else str(int(row.flagged)),
        _number(row.l_d),
        _number(row.l_r),
        _number(row.l_l),
        _text(row.model_version or ""),
        row.model_sha256 or "",
        "" if row.decision is None else row.decision.value,
        _text(row.reviewer or ""),
        "" if row.reviewed_at is None else row.reviewed_at.isoformat(timespec="seconds"),
        _text(row.review_note),
        _text(row.reason or ""),
        "" if row.duplicate_of_id is None else str(row.duplicate_of_id),
        _text(row.tiling or ""),
        _text(row.warning or ""),
        _number(row.p_value),
        _number(row.target_fpr),
        _text(row.accession or ""),
    ]


def cell_csv_row(row: SlideRow, cell: CellRow) -> list[str]:
    """A cell of `row`'s current score, numbered from 1 as the PDF shows it."""
    return [
        str(row.slide_id),
        _text(row.file_name),
        str(row.score_id),
        str(cell.number),
        str(cell.x),
        str(cell.y),
        str(cell.width),
        str(cell.height),
        _text(cell.found_by),
        _number(cell.score),
        _number(cell.l_d),
        _number(cell.l_r),
        _number(cell.l_l),
        str(int(cell.flagged)),
        _number(row.threshold),
        _number(cell.p_value),
    ]


def _text(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)
