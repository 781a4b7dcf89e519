"""Settings: one row per setting declared in app.settings.SETTINGS for the dialog's section (File →
Settings: what a technician sets to review; Model → Training and model settings: λ, β and the
field scale), with its title, its editor (chosen by its kind) and its help beneath.

What each setting changes is said beside it, in particular what cannot change without re-scoring
or retraining. Changes are recorded in the audit trail (by the main window, from `apply()`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.folders_panel import FoldersPanel
from ganad_clinic.app.settings import SETTINGS, AppSettings, Kind, Section, Setting

UNBOUNDED = 1e9
"""The spin box's limit on a side where the setting has none."""


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(mid); font-size: 11px;")
    return label


class Editor:
    """A setting's widget in the dialog: `widget` to show, `row` to lay out (the widget, or it with a
    Browse button), `value()` the value entered; `labelled` False: the widget says its own title."""

    def __init__(self, setting: Setting, value: Any, parent: QWidget) -> None:
        self.setting = setting
        self.labelled = setting.kind not in (Kind.FLAG, Kind.FOLDERS)
        self.value: Callable[[], Any]
        self.widget: QWidget
        self.row: QWidget | QHBoxLayout
        self._folder: QLineEdit | None = None  # a folder's line, filled by Browse
        kind = setting.kind
        if kind is Kind.TEXT:
            line = QLineEdit(value)
            self.widget = self.row = line
            self.value = line.text
        elif kind is Kind.FOLDER:
            folder = self._folder = QLineEdit("" if value is None else str(value))
            folder.setPlaceholderText(f"default {setting.title.lower()}")
            browse = QPushButton("Browse…")
            browse.clicked.connect(lambda: self._choose_folder(parent))
            row = QHBoxLayout()
            row.addWidget(folder, 1)
            row.addWidget(browse)
            self.widget, self.row = folder, row
            self.value = lambda: folder.text().strip() or None
        elif kind is Kind.FOLDERS:
            panel = FoldersPanel(value, with_pause=False)
            self.widget = self.row = panel
            self.value = panel.folders
        elif kind is Kind.FLAG:
            flag = QCheckBox(setting.title)
            flag.setChecked(value)
            self.widget = self.row = flag
            self.value = flag.isChecked
        else:
            number: QDoubleSpinBox | QSpinBox
            low = -UNBOUNDED if setting.minimum is None else setting.minimum  # a spin box always has a range
            high = UNBOUNDED if setting.maximum is None else setting.maximum
            if kind is Kind.NUMBER:
                number = QDoubleSpinBox()
                number.setDecimals(setting.decimals)
                number.setSingleStep(setting.step)
                number.setRange(low, high)
            else:
                number = QSpinBox()
                number.setSingleStep(int(setting.step))
                number.setRange(int(low), int(high))
            number.setSuffix(setting.suffix)
            number.setValue(value)
            self.widget = self.row = number
            self.value = number.value

    def _choose_folder(self, parent: QWidget) -> None:
        chosen = QFileDialog.getExistingDirectory(parent, self.setting.title)
        if chosen and self._folder is not None:
            self._folder.setText(chosen)


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, active_weights: tuple[float, float] | None,
                 section: Section = Section.REVIEW, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(section.value)
        self.settings = settings
        self.editors = {setting.name: Editor(setting, getattr(settings, setting.name), self)
                        for setting in SETTINGS if setting.in_dialog and setting.section is section}
        active = ("" if active_weights is None
                  else f" The active model was calibrated with λ = {active_weights[0]:g}, β = {active_weights[1]:g}.")
        extra_help = {"beta": active}

        form = QFormLayout()
        for name, editor in self.editors.items():
            if editor.labelled:
                form.addRow(editor.setting.title, editor.row)
            elif editor.setting.kind is Kind.FLAG:
                form.addRow("", editor.row)
            else:
                form.addRow(editor.row)
            help_text = editor.setting.help + extra_help.get(name, "")
            if help_text:
                form.addRow("", _note(help_text))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def accept(self) -> None:
        """Close only when every value is allowed; else say which and why, and stay open."""
        for editor in self.editors.values():
            try:
                editor.setting.check(editor.value())
            except ValueError as error:
                QMessageBox.warning(self, self.windowTitle(), f"{editor.setting.title}: {error}")
                editor.widget.setFocus()
                return
        super().accept()

    def apply(self) -> dict[str, list]:
        """Write the values to the settings; returns {setting's key: [old, new]} (as stored) for
        those that changed."""
        changes = {}
        for name, editor in self.editors.items():
            setting = editor.setting
            old = setting.to_stored(getattr(self.settings, name))
            new = setting.to_stored(editor.value())
            setattr(self.settings, name, editor.value())
            if old != new:
                changes[setting.key] = [old, new]
        return changes
