"""Sign-in at the app's start: a named user and password (checked on a worker: argon2 and the
database are not the Qt thread's work). A database without users asks for its first admin
instead. Every failed attempt is counted and audited by screening.users."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.workers import BackgroundCall
from ganad_clinic.screening.users import add_user, sign_in
from ganad_clinic.store import Store, User, UserRole

MINIMUM_WIDTH = 420  # a refusal ("cannot sign in as …: unknown user or wrong password") in two lines


class SignInDialog(QDialog):
    """`user` is the signed-in user once the dialog is accepted."""

    def __init__(self, store: Store, *, first_admin: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.first_admin = store, first_admin
        self.user: User | None = None
        self.setWindowTitle("Create the first admin" if first_admin else "Sign in to GANAD Clinic")
        self.name = QLineEdit()
        self.full_name = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.again = QLineEdit()
        self.again.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = QLabel("This database has no users yet: make its first admin, who then adds the others "
                              "(ganad users add)." if first_admin else "")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("User name", self.name)
        if first_admin:
            form.addRow("Full name (printed on signatures)", self.full_name)
        form.addRow("Password", self.password)
        if first_admin:
            form.addRow("Password again", self.again)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(MINIMUM_WIDTH)
        self.worker = BackgroundCall(self._check, self)
        self.worker.returned.connect(self._signed_in)
        self.worker.errored.connect(self._refused)
        self.name.setFocus()

    def _check(self, name: str, full_name: str, password: str) -> User:
        if self.first_admin:
            add_user(self.store, name, full_name, UserRole.ADMIN, password, actor=name)
        return sign_in(self.store, name, password)

    def submit(self) -> None:
        if not self.buttons.isEnabled():  # a check is running; once refused, a new try goes at once
            return
        name, password = self.name.text().strip(), self.password.text()
        if self.first_admin and password != self.again.text():
            self.message.setText("The two passwords differ: type them again.")
            return
        self.message.setText("Checking…")
        self.buttons.setEnabled(False)
        self.worker.request(name, self.full_name.text(), password)

    def _signed_in(self, user: object) -> None:
        assert isinstance(user, User)
        self.user = user
        self.accept()

    def _refused(self, message: str) -> None:
        self.buttons.setEnabled(True)
        self.password.clear()
        self.again.clear()
        self.password.setFocus()
        self.message.setText(message[:1].upper() + message[1:] + ".")
        self.adjustSize()  # the refusal's lines in full, never clipped

    def done(self, result: int) -> None:
        self.worker.stop()
        super().done(result)
