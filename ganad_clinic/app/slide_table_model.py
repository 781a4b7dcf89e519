"""The review queue as a Qt table model over the store's slide summaries, and its filter/sort proxy.

Rows are keyed by slide id and merged in place (the store's incremental read gives only new and
changed summaries), so the selection survives live updates. New rows go in in chunks, one per turn
of the event loop, so a first load of a large database never freezes the window. The proxy keeps
the slide the technician has selected in view even when a change elsewhere would filter it out,
so that a review key acts on the slide on screen, never on one that slid under the cursor.
A slide shows as flagged when its stored score says so (the flag made at the operating point in
force when it was scored), so the queue, the viewer and the PDF report always agree; a flag a
reviewer overruled or confirmed says so and is coloured apart from an open one.

The worklists (QueueFilter) keep their counts as rows merge: flagged and not yet reviewed (the
default), everything awaiting review, second reads, and problems (files that could not be scored,
with their reason). Slides that arrived since the technician last looked (while the window is open,
or since it was last closed: `remember`) are marked new until selected.
"""

from __future__ import annotations

import enum
from collections import deque
from datetime import datetime

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont

from ganad_clinic.imaging.tiling import WHOLE_IMAGE
from ganad_clinic.model.numbers import score_text
from ganad_clinic.store import ReviewDecision, SlideStatus, SlideSummary

COLUMNS = ("File", "Received", "Score", "Flag", "Cells", "Review")
FILE, RECEIVED, SCORE, FLAG, CELLS, REVIEW = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 2
DECISION_TEXT = {ReviewDecision.ANOMALY_CONFIRMED: "anomaly confirmed", ReviewDecision.NORMAL: "normal",
                 ReviewDecision.SECOND_READ: "second read needed"}
FLAGGED_BRUSH = QBrush(QColor(200, 40, 40))  # an open flag
OVERRULED_BRUSH = QBrush(QColor(0, 114, 178))  # a flag a reviewer marked normal (Okabe-Ito blue)
CONFIRMED_BRUSH = QBrush(QColor(120, 20, 20))  # a flag a reviewer confirmed
REJECTED_BRUSH = QBrush(QColor(130, 130, 130))
NEW_MARK = "● "  # before the file name of a slide that arrived since the technician last looked, until selected

INSERT_CHUNK = 250  # new rows per turn of the event loop (each costs the sorted proxy ~log n comparisons)

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()
"""The invalid index: a table's rows have no parent (a default argument shared by all calls, never changed)."""


class QueueFilter(enum.Enum):
    FLAGGED_OPEN = "Flagged, not yet reviewed"
    AWAITING = "All awaiting review"
    SECOND_READ = "Second read needed"
    PROBLEMS = "Problems (not scored)"
    FLAGGED = "Flagged"
    ALL = "All slides"


def in_worklist(summary: SlideSummary, queue_filter: QueueFilter) -> bool:
    if queue_filter is QueueFilter.FLAGGED_OPEN:
        return is_flagged(summary) and is_awaiting_review(summary)
    if queue_filter is QueueFilter.AWAITING:
        return is_awaiting_review(summary)
    if queue_filter is QueueFilter.SECOND_READ:
        return summary.review is not None and summary.review.decision is ReviewDecision.SECOND_READ
    if queue_filter is QueueFilter.PROBLEMS:
        return is_open_problem(summary)
    if queue_filter is QueueFilter.FLAGGED:
        return is_flagged(summary)
    return True


def is_flagged(summary: SlideSummary) -> bool:
    """The stored flag of the slide's current score."""
    return summary.score is not None and summary.score.flagged


def is_open_problem(summary: SlideSummary) -> bool:
    """A file that could not be scored and has not been replaced at its path since (a rescan of a
    truncated scan leaves Problems; the rejection itself stays on record)."""
    return summary.slide.status is SlideStatus.REJECTED and summary.replaced_by_id is None


def cells_text(summary: SlideSummary) -> str:
    """A field's flagged cells of its cells ("3/37"); empty for a single crop or an unscored slide."""
    score = summary.score
    if score is None or score.tiling_rule in (None, WHOLE_IMAGE):
        return ""
    return f"{summary.flagged_cells}/{summary.cells}"


def is_awaiting_review(summary: SlideSummary) -> bool:
    """Scored and not yet decided: never reviewed, or the last review asked for a second read."""
    if summary.slide.status is not SlideStatus.SCORED:
        return False
    return summary.review is None or summary.review.decision is ReviewDecision.SECOND_READ


def flag_text(summary: SlideSummary) -> str:
    if summary.slide.status is SlideStatus.REJECTED:
        return "rejected"
    if summary.score is None:
        return "pending"
    if not is_flagged(summary):
        return "normal"
    decision = None if summary.review is None else summary.review.decision
    if decision is ReviewDecision.NORMAL:
        return "FLAGGED, overruled"
    if decision is ReviewDecision.ANOMALY_CONFIRMED:
        return "FLAGGED, confirmed"
    return "FLAGGED"


def flag_cell_text(summary: SlideSummary) -> str:
    """The queue's Flag column, as narrow as "FLAGGED": a reviewed flag by its decision alone (the
    colour and the tooltip say it was flagged)."""
    return flag_text(summary).replace("FLAGGED, ", "")


def flag_brush(summary: SlideSummary) -> QBrush | None:
    """Open flags red; overruled ones blue, confirmed ones dark red; rejected files grey."""
    if summary.slide.status is SlideStatus.REJECTED:
        return REJECTED_BRUSH
    if not is_flagged(summary):
        return None
    decision = None if summary.review is None else summary.review.decision
    return {ReviewDecision.NORMAL: OVERRULED_BRUSH, ReviewDecision.ANOMALY_CONFIRMED: CONFIRMED_BRUSH}.get(
        decision, FLAGGED_BRUSH)  # type: ignore[arg-type]


def review_text(summary: SlideSummary) -> str:
    """The decision; who made it and when are in the cell's tooltip (the column stays narrow)."""
    review = summary.review
    if review is None:
        return "awaiting" if summary.slide.status is SlideStatus.SCORED else ""
    return DECISION_TEXT[review.decision] + (" (amendment)" if summary.is_amendment else "")


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


class SlideTableModel(QAbstractTableModel):
    inserted = Signal()  # every new row of the last merge is in

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[SlideSummary] = []
        self._row_of: dict[int, int] = {}
        self._incoming: deque[SlideSummary] = deque()  # summaries of a merge not yet taken in
        self._insert_timer = QTimer(self)
        self._insert_timer.setInterval(0)
        self._insert_timer.timeout.connect(self._insert_chunk)
        self.counts: dict[QueueFilter, int] = dict.fromkeys(QueueFilter, 0)
        self.unseen: set[int] = set()  # slides that arrived since the technician last looked, not selected yet
        self.loaded = False  # the first read is in: rows from then on are new arrivals
        self._seen_up_to = 0  # the newest slide in the queue when it was last closed (0: never looked)
        self._carried: frozenset[int] = frozenset()  # slides still marked new when it was last closed

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = ROOT) -> int:
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
            return flag_brush(summary)
        if role == Qt.ItemDataRole.FontRole and column == FILE and summary.slide.id in self.unseen:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._review_tooltip(summary) if column == REVIEW else self._tooltip(summary)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (SCORE, CELLS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, summary: SlideSummary, column: int) -> str:
        if column == FILE:
            return (NEW_MARK if summary.slide.id in self.unseen else "") + summary.slide.file_name
        if column == RECEIVED:
            return local_time(summary.slide.first_seen)
        if column == SCORE:
            return "" if summary.score is None else score_text(summary.score.score)
        if column == FLAG:
            return flag_cell_text(summary)
        if column == CELLS:
            return cells_text(summary)
        return review_text(summary)

    def _sort_key(self, summary: SlideSummary, column: int):
        if column == FILE:
            return summary.slide.file_name.lower()
        if column == RECEIVED:
            return summary.slide.first_seen.timestamp()
        if column == SCORE:
            return float("-inf") if summary.score is None else summary.score.score
        if column == FLAG:
            return (is_flagged(summary), summary.score is not None)
        if column == CELLS:
            return (summary.flagged_cells, summary.cells)
        return review_text(summary)

    def _tooltip(self, summary: SlideSummary) -> str:
        slide, score = summary.slide, summary.score
        lines = [slide.path]
        if slide.status is SlideStatus.REJECTED:
            lines.append(f"rejected: {slide.reason}")
            if summary.replaced_by_id is not None:
                lines.append(f"the file was replaced since: see slide {summary.replaced_by_id}")
        if score is not None:
            station = f", station {score.station}" if score.station else ""
            lines.append(f"score {score_text(score.score)}, threshold {score_text(score.threshold)} "
                         f"(model {score.model_version}{station}): {flag_text(summary).lower()}")
            if cells_text(summary):
                lines.append(f"{summary.flagged_cells} of {summary.cells} cells flagged")
        if slide.duplicate_of_id is not None:
            lines.append(f"same content as slide {slide.duplicate_of_id}")
        if slide.id in self.unseen:
            lines.append("new: arrived since you last looked")
        return "\n".join(lines)

    @staticmethod
    def _review_tooltip(summary: SlideSummary) -> str:
        review = summary.review
        if review is None:
            return "not reviewed yet" if summary.slide.status is SlideStatus.SCORED else "cannot be reviewed"
        note = f"\nnote: {review.note}" if review.note else ""
        amendment = (f"\nan amendment: made after specimen {summary.accession} was signed off; it is to be "
                     "signed again" if summary.is_amendment else "")
        when = local_time(review.created_at)
        return f"{DECISION_TEXT[review.decision]} by {review.reviewer}, {when}{note}{amendment}"

    @property
    def awaiting_count(self) -> int:
        return self.counts[QueueFilter.AWAITING]

    @property
    def flagged_count(self) -> int:
        return self.counts[QueueFilter.FLAGGED]

    def remember(self, seen_up_to: int, unseen: list[int]) -> None:
        """What the last session left (`looked`): the first read marks the slides newer than it
        and those still unselected then; call before the first merge."""
        self._seen_up_to, self._carried = seen_up_to, frozenset(unseen)

    def looked(self) -> tuple[int, list[int]] | None:
        """The newest slide in the queue and the slides still marked new, to `remember` next time;
        None before the first read is all in (nothing to say yet)."""
        if not self.loaded or self._incoming:
            return None
        return max(self._row_of, default=self._seen_up_to), sorted(self.unseen)

    def mark_seen(self, slide_id: int) -> None:
        """The technician selected this slide: it is no longer new."""
        if slide_id in self.unseen:
            self.unseen.discard(slide_id)
            self.touch(slide_id)

    # access

    def summary(self, row: int) -> SlideSummary:
        return self._rows[row]

    def sort_key(self, row: int, column: int):
        return self._sort_key(self._rows[row], column)

    def row_of(self, slide_id: int) -> int | None:
        return self._row_of.get(slide_id)

    def summaries(self) -> list[SlideSummary]:
        return list(self._rows)

    @property
    def inserting(self) -> bool:
        """New rows of the last merge are still going in."""
        return bool(self._incoming)

    # updates

    def merge(self, summaries: list[SlideSummary]) -> None:
        """Take in new and changed summaries (slides are never deleted): changed rows update in
        place, new ones are appended, INSERT_CHUNK summaries per turn of the event loop; `inserted`
        says when all are in. A slide's later summary wins over an earlier one."""
        self._incoming.extend(summaries)
        if self._incoming and not self._insert_timer.isActive():
            self._insert_chunk()  # the first chunk at once: a few new slides show without a turn of the loop
            if self._incoming:
                self._insert_timer.start()

    refresh = merge

    def replace_row(self, summary: SlideSummary) -> None:
        """A known slide's newer summary (a review just saved, a re-score): its row updates in place."""
        row = self._row_of.get(summary.slide.id)
        if row is None or not _changed(self._rows[row], summary) or _older(summary, self._rows[row]):
            return
        self._count(self._rows[row], -1)
        self._rows[row] = summary
        self._count(summary, 1)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def touch(self, slide_id: int) -> None:
        """Ask the views to look at a row again (the proxy re-filters it)."""
        row = self._row_of.get(slide_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def _insert_chunk(self) -> None:
        incoming, new = self._incoming, {}
        for _ in range(min(INSERT_CHUNK, len(incoming))):
            summary = incoming.popleft()
            if summary.slide.id in self._row_of:
                self.replace_row(summary)
            else:
                new[summary.slide.id] = summary
        chunk = list(new.values())
        if chunk:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(chunk) - 1)
            for summary in chunk:
                self._row_of[summary.slide.id] = len(self._rows)
                self._rows.append(summary)
                self._count(summary, 1)
                if self._arrived_unseen(summary.slide.id):
                    self.unseen.add(summary.slide.id)
            self.endInsertRows()
        if not self._incoming:
            self._insert_timer.stop()
            self.loaded = True
            self.inserted.emit()

    def _arrived_unseen(self, slide_id: int) -> bool:
        if self.loaded:
            return True
        return (0 < self._seen_up_to < slide_id) or slide_id in self._carried

    def stop_inserting(self) -> None:
        self._insert_timer.stop()

    def _count(self, summary: SlideSummary, sign: int) -> None:
        for queue_filter in QueueFilter:
            self.counts[queue_filter] += sign * in_worklist(summary, queue_filter)


def _changed(old: SlideSummary, new: SlideSummary) -> bool:
    def key(summary: SlideSummary) -> tuple:
        return (summary.slide.status, summary.slide.archived_path, summary.slide.duplicate_of_id,
                summary.score.id if summary.score else None, summary.last_review_id, summary.replaced_by_id)

    return key(old) != key(new)


def _older(new: SlideSummary, old: SlideSummary) -> bool:
    """`new` was read before `old` (a queued read overtaken by a review saved here): scores and
    review rows (withdrawals too) only grow, and a slide's status and archive place only move forward."""
    def ids(summary: SlideSummary) -> tuple[int, int]:
        return (summary.score.id if summary.score else 0, summary.last_review_id)

    (new_score, new_review), (old_score, old_review) = ids(new), ids(old)
    return (new_score < old_score or new_review < old_review
            or (old.slide.archived_path is not None and new.slide.archived_path is None)
            or (old.slide.status is not SlideStatus.PENDING and new.slide.status is SlideStatus.PENDING))


class SlideFilterProxy(QSortFilterProxyModel):
    """Filter by queue (awaiting review, flagged, all) and by a piece of the file name; sort by value."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue_filter = QueueFilter.FLAGGED_OPEN
        self.search = ""
        self.pinned: int | None = None  # the slide on screen: kept in view whatever the filter says
        self.setSortRole(SORT_ROLE)

    def slides(self) -> SlideTableModel:
        """The source model, typed (Qt's `sourceModel()` is any QAbstractItemModel)."""
        model = self.sourceModel()
        assert isinstance(model, SlideTableModel)
        return model

    def pin(self, slide_id: int | None) -> None:
        """Keep this slide in view (the one the technician sees); the one pinned before is filtered again."""
        previous, self.pinned = self.pinned, slide_id
        if previous is not None and previous != slide_id:
            self.slides().touch(previous)

    def set_queue_filter(self, queue_filter: QueueFilter) -> None:
        self._change_filter(lambda: setattr(self, "queue_filter", queue_filter))

    def set_search(self, text: str) -> None:
        self._change_filter(lambda: setattr(self, "search", text.strip().lower()))

    def _change_filter(self, change) -> None:
        """A filter the user chose applies to every row, the pinned one too; the pin stays only on
        a slide still in view."""
        pinned, self.pinned = self.pinned, None
        self.beginFilterChange()
        change()
        self.endFilterChange()
        row = None if pinned is None else self.slides().row_of(pinned)
        if row is not None and self.mapFromSource(self.sourceModel().index(row, 0)).isValid():
            self.pinned = pinned

    def lessThan(self, left: Index, right: Index) -> bool:
        """By the rows' sort keys, straight from the model (not through two `data()` calls)."""
        model = self.slides()
        column = left.column()
        return model.sort_key(left.row(), column) < model.sort_key(right.row(), column)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.slides()
        summary = model.summary(source_row)
        if self.pinned is not None and summary.slide.id == self.pinned:
            return True
        if self.search and self.search not in summary.slide.file_name.lower():
            return False
        return in_worklist(summary, self.queue_filter)

    def summary_at(self, row: int) -> SlideSummary:
        return self.data(self.index(row, 0), SUMMARY_ROLE)
