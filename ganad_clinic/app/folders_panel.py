"""Watched folders: add, remove, and pause or resume the watcher."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class FoldersPanel(QGroupBox):
    folders_changed = Signal(list)  # list[Path]
    pause_toggled = Signal(bool)

    def __init__(self, folders: list[Path], *, with_pause: bool = True, parent: QWidget | None = None) -> None:
        super().__init__("Watched folders", parent)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setMaximumHeight(72)
        self.add_button = QPushButton("Add…")
        self.add_button.clicked.connect(self._choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.pause_button.setVisible(with_pause)
        buttons.addStretch(1)
        buttons.addWidget(self.pause_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.set_folders(folders)

    def folders(self) -> list[Path]:
        return [Path(self.list.item(row).text()) for row in range(self.list.count())]

    def set_folders(self, folders: list[Path]) -> None:
        self.list.clear()
        self.list.addItems([str(folder) for folder in folders])

    def add_folder(self, folder: Path) -> None:
        folder = folder.absolute()
        if folder in self.folders():
            return
        self.list.addItem(str(folder))
        self.folders_changed.emit(self.folders())

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self.list.takeItem(row)
        self.folders_changed.emit(self.folders())

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Watch a folder")
        if chosen:
            self.add_folder(Path(chosen))

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
