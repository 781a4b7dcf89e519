"""The review panel: the three decisions with a note, and the slide's current review.

The buttons trigger the main window's actions, so a click and a keyboard shortcut are one path.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QLineEdit, QToolButton, QVBoxLayout, QWidget

from ganad_clinic.app.slide_table_model import DECISION_TEXT, local_time
from ganad_clinic.store import SlideStatus, SlideSummary


class ReviewPanel(QGroupBox):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__("Review", parent)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note for this review (optional)")
        self.note.setClearButtonEnabled(True)
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

    def take_note(self) -> str:
        note = self.note.text().strip()
        self.note.clear()
        return note

    def set_reviewer(self, name: str) -> None:
        self.reviewer.setText(f"Reviewer: {name}" if name else "Reviewer: asked at the first review")

    def show_summary(self, summary: SlideSummary | None) -> None:
        if summary is None:
            self.current.setText("Select a slide in the queue.")
        elif summary.slide.status is not SlideStatus.SCORED:
            self.current.setText("Only scored slides can be reviewed.")
        elif summary.review is None:
            self.current.setText("Not reviewed yet.")
        else:
            review = summary.review
            note = f" — “{review.note}”" if review.note else ""
            self.current.setText(f"Current review: <b>{DECISION_TEXT[review.decision]}</b> by {review.reviewer}, "
                                 f"{local_time(review.created_at)}{note}. A new review is added, never replacing it.")
