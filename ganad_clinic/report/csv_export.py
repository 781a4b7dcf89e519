"""The report's slide table as CSV, for spreadsheets and laboratory systems.

Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
carriage return: a file named `=HYPERLINK(...).png`) get a leading single quote, as OWASP's CSV
injection advice says; the quote shows the cell is text and strips off to give the original.
Numeric columns are written as numbers, so a score of -3.1 stays -3.1.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ganad_clinic.report.atomic import atomic_output
from ganad_clinic.report.content import ReportContent, SlideRow

COLUMNS = (
    "slide_id", "file", "path", "received", "status", "score", "threshold", "flagged", "l_d", "l_r", "l_l",
    "model_version", "model_sha256", "review_decision", "reviewer", "reviewed_at", "review_note",
    "rejection_reason", "duplicate_of", "tiling", "warning",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_csv(content: ReportContent, path: str | os.PathLike[str]) -> Path:
    """Write one line per slide of the report, atomically. UTF-8 with a byte-order mark, so
    spreadsheet programs read non-ASCII names correctly; numbers at full precision."""
    path = Path(path)
    with atomic_output(path) as partial:
        with open(partial, "w", encoding="utf-8-sig", errors="replace", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(csv_row(row) for row in content.rows)
    return path


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
    ]


def _text(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)
