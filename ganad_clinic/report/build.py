"""`build_report`: the one call the CLI, the demo and the desktop app make to print a report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ganad_clinic.report.content import SummaryCounts, gather_content
from ganad_clinic.report.csv_export import write_csv
from ganad_clinic.report.pdf import write_pdf
from ganad_clinic.store import Signature, SpecimenSummary, Store


@dataclass(frozen=True)
class ReportSummary:
    """What was written, with the figures a caller may want to show."""

    pdf_path: Path
    csv_path: Path | None
    cells_csv_path: Path | None  # beside csv_path: the cells of each slide's current score
    pages: int
    counts: SummaryCounts
    model_versions: tuple[str, ...]  # behind the period's scores, most used first

    @property
    def is_empty(self) -> bool:
        return self.counts.slides == 0


def build_report(
    store: Store,
    out_path: str | os.PathLike[str],
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    folder: str | os.PathLike[str] | None = None,
    flagged_only: bool = False,
    lab: str = "",
    operator: str = "",
    csv_path: str | os.PathLike[str] | None = None,
    specimen: SpecimenSummary | None = None,
    signature: Signature | None = None,
) -> ReportSummary:
    """Write the screening report of the slides received in [since, until] to `out_path`, and the
    same rows to `csv_path` when given, with their cells beside it (`<name>_cells.csv`). Each file
    is replaced atomically: an interrupted build leaves any earlier file as it was.

    A date covers its whole local day (`until` included); a naive datetime is local time.
    `folder` selects one inbox (as recorded: an absolute path); `specimen` one specimen, whose
    signature (`signature`, by default its latest) fills the sign-off block.
    """
    content = gather_content(
        store, since=since, until=until, folder=None if folder is None else str(folder),
        flagged_only=flagged_only, lab=lab, operator=operator, specimen=specimen, signature=signature,
    )
    pages = write_pdf(content, out_path)
    slides_csv, cells_csv = (None, None) if csv_path is None else write_csv(content, csv_path)
    return ReportSummary(Path(out_path), slides_csv, cells_csv, pages, content.counts,
                         tuple(model.version for model in content.models if model.slides_scored))
