"""The review panel: the three decisions with a note, and the slide's current review.

The buttons trigger the main window's actions, so a click and a keyboard shortcut are one path.
A note belongs to the slide it was typed for: switching slides keeps an unsaved note with its
slide (it is there again on coming back) and never carries it to the next one. In the note field
the letters type; Alt+A / Alt+N / Alt+S review with the note, and Enter, Ctrl+Enter or Esc go
back to the queue with the note kept.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QLineEdit, QToolButton, QVBoxLayout, QWidget

from ganad_clinic.app.slide_table_model import DECISION_TEXT, local_time
from ganad_clinic.store import SlideStatus, SlideSummary

LEAVE_KEYS = ("Escape", "Ctrl+Return", "Ctrl+Enter")  # and Enter itself (the field's returnPressed)
NOTE_HINT = "Note for this slide (optional) — Alt+A / Alt+N / Alt+S review with it; Enter or Esc: back to the slides"


class ReviewPanel(QGroupBox):
    leave_requested = Signal()  # done typing: the queue takes the keyboard again

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__("Review", parent)
        self.slide_id: int | None = None  # the slide the note field is for
        self.notes: dict[int, str] = {}  # unsaved notes of the other slides, by slide id
        self.note = QLineEdit()
        self.note.setPlaceholderText(NOTE_HINT)
        self.note.setToolTip(NOTE_HINT)
        self.note.setClearButtonEnabled(True)
        self.note.returnPressed.connect(self.leave_requested)
        for key in LEAVE_KEYS:  # connected signal to signal: a callable given to QShortcut would keep the panel alive
            shortcut = QShortcut(QKeySequence(key), self.note)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(self.leave_requested)
        self.current = QLabel("")
        self.current.setWordWrap(True)
        self.reviewer = QLabel("")
        self.reviewer.setStyleSheet("color: palette(mid);")
        buttons = QHBoxLayout()
        for action in actions:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setMinimumHeight(30)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.reviewer)
        layout = QVBoxLayout(self)
        layout.addWidget(self.current)
        layout.addWidget(self.note)
        layout.addLayout(buttons)

    def take_note(self, slide_id: int) -> str:
        """The note typed for this slide, which a review saves: it leaves the field."""
        if slide_id != self.slide_id:
            return self.notes.pop(slide_id, "").strip()
        note = self.note.text().strip()
        self.note.clear()
        return note

    def set_reviewer(self, name: str) -> None:
        self.reviewer.setText(f"Reviewer: {name}" if name else "Reviewer: asked at the first review")

    def show_summary(self, summary: SlideSummary | None) -> None:
        self._switch_note(None if summary is None else summary.slide.id)
        if summary is None:
            self.current.setText("Select a slide in the queue.")
        elif summary.slide.status is SlideStatus.REJECTED:
            self.current.setText(f"<b>Not scored:</b> {html.escape(summary.slide.reason or 'no reason recorded')}. "
                                 "It cannot be reviewed; put a good copy of the file (same name) in its folder "
                                 "to have it scored.")
        elif summary.slide.status is not SlideStatus.SCORED:
            self.current.setText("Waiting to be scored: it can be reviewed once it is.")
        elif summary.review is None:
            self.current.setText("Not reviewed yet.")
        else:
            review = summary.review
            note = f" — “{review.note}”" if review.note else ""
            amendment = (f" It amends specimen {html.escape(summary.accession or '')}, signed off before: the "
                         "specimen is to be signed again." if summary.is_amendment else "")
            self.current.setText(f"Current review: <b>{DECISION_TEXT[review.decision]}</b> by {review.reviewer}, "
                                 f"{local_time(review.created_at)}{note}. A new review is added, never replacing it."
                                 f"{amendment}")

    def _switch_note(self, slide_id: int | None) -> None:
        """Keep the unsaved note with the slide it was typed for; show the new slide's own."""
        if slide_id == self.slide_id:
            return
        typed = self.note.text()
        if self.slide_id is not None and typed.strip():
            self.notes[self.slide_id] = typed
        self.slide_id = slide_id
        self.note.setText("" if slide_id is None else self.notes.pop(slide_id, ""))
