"""The review queue as a Qt table model over `Store.list_slides()`, and its filter/sort proxy.

Rows are keyed by slide id and updated in place on refresh, so the selection survives live
updates. Whether a slide shows as flagged uses the score's own threshold plus the settings'
threshold offset (the stored flag keeps the threshold in force when it was scored).
"""

from __future__ import annotations

import enum
from datetime import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from ganad_clinic.store import ReviewDecision, SlideStatus, SlideSummary

COLUMNS = ("File", "Received", "Score", "Flag", "Review")
FILE, RECEIVED, SCORE, FLAG, REVIEW = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 2
DECISION_TEXT = {ReviewDecision.ANOMALY_CONFIRMED: "anomaly confirmed", ReviewDecision.NORMAL: "normal",
                 ReviewDecision.SECOND_READ: "second read needed"}
FLAGGED_BRUSH = QBrush(QColor(200, 40, 40))
REJECTED_BRUSH = QBrush(QColor(130, 130, 130))

Index = QModelIndex | QPersistentModelIndex


class QueueFilter(enum.Enum):
    AWAITING = "Awaiting review"
    FLAGGED = "Flagged"
    ALL = "All slides"


def is_flagged(summary: SlideSummary, offset: float = 0.0) -> bool:
    score = summary.score
    return score is not None and score.score >= score.threshold + offset


def is_awaiting_review(summary: SlideSummary) -> bool:
    """Scored and not yet decided: never reviewed, or the last review asked for a second read."""
    if summary.slide.status is not SlideStatus.SCORED:
        return False
    return summary.review is None or summary.review.decision is ReviewDecision.SECOND_READ


def flag_text(summary: SlideSummary, offset: float = 0.0) -> str:
    if summary.slide.status is SlideStatus.REJECTED:
        return "rejected"
    if summary.score is None:
        return "pending"
    return "FLAGGED" if is_flagged(summary, offset) else "normal"


def review_text(summary: SlideSummary) -> str:
    review = summary.review
    if review is None:
        return "awaiting" if summary.slide.status is SlideStatus.SCORED else ""
    return f"{DECISION_TEXT[review.decision]} ({review.reviewer})"


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def short_time(moment: datetime) -> str:
    """Today's slides by time only; older ones with their date."""
    local = moment.astimezone()
    return local.strftime("%H:%M:%S") if local.date() == datetime.now().astimezone().date() else local.strftime("%Y-%m-%d %H:%M")


class SlideTableModel(QAbstractTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[SlideSummary] = []
        self._row_of: dict[int, int] = {}
        self.threshold_offset = 0.0

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        summary = self._rows[index.row()]
        column = index.column()
        if role == SUMMARY_ROLE:
            return summary
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(summary, column)
        if role == SORT_ROLE:
            return self._sort_key(summary, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == FLAG:
            if summary.slide.status is SlideStatus.REJECTED:
                return REJECTED_BRUSH
            return FLAGGED_BRUSH if is_flagged(summary, self.threshold_offset) else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(summary)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, summary: SlideSummary, column: int) -> str:
        if column == FILE:
            return summary.slide.file_name
        if column == RECEIVED:
            return short_time(summary.slide.first_seen)
        if column == SCORE:
            return "" if summary.score is None else f"{summary.score.score:.3f}"
        if column == FLAG:
            return flag_text(summary, self.threshold_offset)
        return review_text(summary)

    def _sort_key(self, summary: SlideSummary, column: int):
        if column == FILE:
            return summary.slide.file_name.lower()
        if column == RECEIVED:
            return summary.slide.first_seen.timestamp()
        if column == SCORE:
            return float("-inf") if summary.score is None else summary.score.score
        if column == FLAG:
            return (is_flagged(summary, self.threshold_offset), summary.score is not None)
        return review_text(summary)

    def _tooltip(self, summary: SlideSummary) -> str:
        slide, score = summary.slide, summary.score
        lines = [slide.path]
        if slide.status is SlideStatus.REJECTED:
            lines.append(f"rejected: {slide.reason}")
        if score is not None:
            lines.append(f"score {score.score:.4f}, threshold {score.threshold:.4f} (model {score.model_version}); "
                         f"stored flag: {'flagged' if score.flagged else 'normal'}")
        if slide.duplicate_of_id is not None:
            lines.append(f"same content as slide {slide.duplicate_of_id}")
        return "\n".join(lines)

    # access

    def summary(self, row: int) -> SlideSummary:
        return self._rows[row]

    def row_of(self, slide_id: int) -> int | None:
        return self._row_of.get(slide_id)

    def summaries(self) -> list[SlideSummary]:
        return list(self._rows)

    # updates

    def refresh(self, summaries: list[SlideSummary]) -> None:
        """Update changed rows in place and append new ones (slides are never deleted)."""
        new: list[SlideSummary] = []
        for summary in summaries:
            row = self._row_of.get(summary.slide.id)
            if row is None:
                new.append(summary)
            elif _changed(self._rows[row], summary):
                self._rows[row] = summary
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        if new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for summary in new:
                self._row_of[summary.slide.id] = len(self._rows)
                self._rows.append(summary)
            self.endInsertRows()

    def set_threshold_offset(self, offset: float) -> None:
        self.threshold_offset = offset
        if self._rows:
            self.dataChanged.emit(self.index(0, FLAG), self.index(len(self._rows) - 1, FLAG))


def _changed(old: SlideSummary, new: SlideSummary) -> bool:
    def key(summary: SlideSummary) -> tuple:
        return (summary.slide.status, summary.slide.archived_path, summary.slide.duplicate_of_id,
                summary.score.id if summary.score else None, summary.review.id if summary.review else None)

    return key(old) != key(new)


class SlideFilterProxy(QSortFilterProxyModel):
    """Filter by queue (awaiting review, flagged, all) and by a piece of the file name; sort by value."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue_filter = QueueFilter.AWAITING
        self.search = ""
        self.setSortRole(SORT_ROLE)

    def set_queue_filter(self, queue_filter: QueueFilter) -> None:
        self.beginFilterChange()
        self.queue_filter = queue_filter
        self.endFilterChange()

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self.search = text.strip().lower()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model: SlideTableModel = self.sourceModel()
        summary = model.summary(source_row)
        if self.search and self.search not in summary.slide.file_name.lower():
            return False
        if self.queue_filter is QueueFilter.AWAITING:
            return is_awaiting_review(summary)
        if self.queue_filter is QueueFilter.FLAGGED:
            return is_flagged(summary, model.threshold_offset)
        return True

    def summary_at(self, row: int) -> SlideSummary:
        return self.data(self.index(row, 0), SUMMARY_ROLE)
