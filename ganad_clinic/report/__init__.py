"""PDF screening reports (and their CSV) from the results database.

`build_report(store, out_path, ...)` is the entry point; `content` gathers the figures, `pdf` lays
them out, `csv_export` writes the same rows as CSV.
"""

from __future__ import annotations

from ganad_clinic.report.build import ReportSummary, build_report
from ganad_clinic.report.content import ReportContent, SummaryCounts, gather_content

__all__ = ["ReportContent", "ReportSummary", "SummaryCounts", "build_report", "gather_content"]
