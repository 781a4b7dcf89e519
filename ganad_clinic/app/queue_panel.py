"""The review queue: the worklists with their counts (flagged and not yet reviewed first, all
awaiting review, second reads, problems, flagged, all), search by name, the sortable table.

The keyboard goes back to the table once a filter is chosen, and from the search box on Enter, Esc
or its clear button, so the review keys that follow act on the slides and never type into a box.
A filter that hides the selected slide selects the first slide left in view (or none): the slide
on screen is always one the table shows.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.slide_table_model import (
    FILE,
    SCORE,
    QueueFilter,
    SlideFilterProxy,
    SlideTableModel,
    is_awaiting_review,
)
from ganad_clinic.store import SlideSummary

FILE_WIDTH = 160
"""The File column's starting width ("cell-normal-000.png", "field-Im001_1.jpg" whole); the user may drag it."""
MINIMUM_WIDTH = 520
"""The queue's narrowest: every column readable; the viewer takes the rest of the window."""


class QueuePanel(QGroupBox):
    current_changed = Signal(object)  # SlideSummary | None

    def __init__(self, model: SlideTableModel, parent: QWidget | None = None) -> None:
        super().__init__("Slides", parent)
        self.model = model
        self.proxy = SlideFilterProxy(self)
        self.proxy.setSourceModel(model)
        self.filter = QComboBox()
        for queue_filter in QueueFilter:
            self.filter.addItem(queue_filter.value, queue_filter)
        self.filter.currentIndexChanged.connect(self._filter_changed)
        self.filter.activated.connect(self.focus_table)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search file names (Ctrl+F)")
        self.search.setToolTip("Search by file name (Ctrl+F); Enter or Esc: back to the slides")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
        self.search.returnPressed.connect(self.focus_table)
        leave = QShortcut(QKeySequence("Escape"), self.search)  # connected: a callable given would keep the panel alive
        leave.setContext(Qt.ShortcutContext.WidgetShortcut)
        leave.activated.connect(self.focus_table)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(SCORE, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the next control, as everywhere else
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setResizeContentsPrecision(0)  # widths from the rows in view: 100,000 rows are not all measured
        header.setSectionResizeMode(FILE, QHeaderView.ResizeMode.Interactive)  # the others' contents never squeeze it
        header.resizeSection(FILE, FILE_WIDTH)
        header.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        for action in self.search.findChildren(QAction):  # the clear button's
            action.triggered.connect(self.focus_table)
        top = QHBoxLayout()
        top.addWidget(self.filter)
        top.addWidget(self.search, 1)
        self.counts_label = QLabel("")  # every worklist's count at a glance (the drop-down shows one)
        self.counts_label.setStyleSheet("color: palette(mid);")
        self.setMinimumWidth(MINIMUM_WIDTH)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.counts_label)

    def focus_table(self) -> None:
        """The keyboard back to the slides (after a filter is chosen, or from the search box)."""
        self.table.setFocus()

    def _filter_changed(self) -> None:
        current = self.current_summary()
        self.proxy.set_queue_filter(self.filter.currentData())
        self._keep_selection(current)

    def _search_changed(self, text: str) -> None:
        current = self.current_summary()
        self.proxy.set_search(text)
        self._keep_selection(current)

    def _keep_selection(self, before: SlideSummary | None) -> None:
        """After a filter change: the slide selected before if it is still in view, else the first
        one in view, else none; the viewer follows whichever it is."""
        if before is not None and self.select_slide(before.slide.id):
            return
        self.table.selectionModel().clear()
        self.select_first()
        if not self.table.currentIndex().isValid():
            self.current_changed.emit(None)

    def set_queue_filter(self, queue_filter: QueueFilter) -> None:
        self.filter.setCurrentIndex(self.filter.findData(queue_filter))

    def _row_changed(self, current, previous) -> None:
        summary = self.current_summary()
        self.proxy.pin(None if summary is None else summary.slide.id)
        if summary is not None:
            self.model.mark_seen(summary.slide.id)
        self.current_changed.emit(summary)

    def show_counts(self) -> None:
        """Each worklist's name with its count, as the rows stand."""
        for index in range(self.filter.count()):
            queue_filter = self.filter.itemData(index)
            self.filter.setItemText(index, f"{queue_filter.value} ({self.model.counts[queue_filter]})")

    def current_summary(self) -> SlideSummary | None:
        index = self.table.currentIndex()
        return self.proxy.summary_at(index.row()) if index.isValid() else None

    def select_slide(self, slide_id: int) -> bool:
        row = self.model.row_of(slide_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)
        return True

    def select_first(self) -> None:
        if self.proxy.rowCount() and not self.table.currentIndex().isValid():
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.table.selectionModel().setCurrentIndex(self.proxy.index(0, 0), flags)

    def awaiting_neighbour(self, step: int, exclude: int | None = None) -> SlideSummary | None:
        """The next (step 1) or previous (step -1) slide awaiting review in the table's order."""
        current = self.table.currentIndex()
        row = current.row() if current.isValid() else (-1 if step > 0 else self.proxy.rowCount())
        row += step
        while 0 <= row < self.proxy.rowCount():
            summary = self.proxy.summary_at(row)
            if is_awaiting_review(summary) and summary.slide.id != exclude:
                return summary
            row += step
        return None
