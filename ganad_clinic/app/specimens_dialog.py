"""Specimens: each accession with its images (score, flag, flagged cells, review) and its state
(open / reviewed / signed / amended) and finding; Sign signs the chosen one off as the signed-in
user, who types their password again, and sends its result to the LIS outbox (as `ganad signoff`).
The list and the sign-off run on workers; a refusal says why in the words of the store."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.slide_table_model import cells_text, flag_text, local_time, review_text
from ganad_clinic.app.workers import BackgroundCall
from ganad_clinic.model.numbers import score_text
from ganad_clinic.screening.signoff import DEFAULT_MEANING, SignedResult, sign_off
from ganad_clinic.screening.users import Permission, may
from ganad_clinic.store import SpecimenState, SpecimenSummary, Store

COLUMNS = ("Specimen / image", "State", "Finding", "Score", "Flag", "Cells", "Review", "Signed")
SIGNABLE = (SpecimenState.REVIEWED, SpecimenState.AMENDED)


def _signed_text(specimen: SpecimenSummary) -> str:
    signature = specimen.signature
    if signature is None:
        return ""
    return f"{signature.printed_name}, {local_time(signature.signed_at)}"


class SpecimensDialog(QDialog):
    def __init__(self, store: Store, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.settings = store, settings
        self.setWindowTitle("Specimens")
        self.resize(1000, 560)
        self.specimens: dict[str, SpecimenSummary] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._chosen)
        self.counts = QLabel("Reading the specimens…")
        self.status = QLabel("")  # what the last sign-off said
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sign_button = QPushButton("Sign…")
        self.sign_button.setEnabled(False)
        self.sign_button.clicked.connect(self.sign)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.sign_button)
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.counts)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.reader = BackgroundCall(store.list_specimens, self)
        self.reader.returned.connect(self._show)
        self.reader.errored.connect(self.counts.setText)
        self.signer = BackgroundCall(self._sign_off, self)
        self.signer.returned.connect(self._signed)
        self.signer.errored.connect(self._refused)

    def refresh(self) -> None:
        self.reader.request()

    def _show(self, specimens: object) -> None:
        assert isinstance(specimens, list)
        current = self._accession()
        self.tree.clear()
        self.specimens = {specimen.specimen.accession: specimen for specimen in specimens}
        for specimen in specimens:
            flagged = sum(1 for s in specimen.slides if s.score is not None and s.score.flagged)
            item = QTreeWidgetItem([specimen.specimen.accession, specimen.state.value, specimen.finding, "",
                                    f"{flagged} of {len(specimen.slides)} flagged", "", "", _signed_text(specimen)])
            item.setData(0, Qt.ItemDataRole.UserRole, specimen.specimen.accession)
            for summary in specimen.slides:
                score = None if summary.score is None else summary.score.score
                item.addChild(QTreeWidgetItem([summary.slide.file_name, "", "", score_text(score), flag_text(summary),
                                               cells_text(summary), review_text(summary), ""]))
            self.tree.addTopLevelItem(item)
            if specimen.specimen.accession == current:
                self.tree.setCurrentItem(item)
        counts = {state: sum(s.state is state for s in specimens) for state in SpecimenState}
        self.counts.setText(" · ".join(f"{count} {state.value}" for state, count in counts.items()))
        self._chosen()

    def _accession(self) -> str | None:
        item = self.tree.currentItem()
        while item is not None and item.parent() is not None:
            item = item.parent()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def _chosen(self, *_: object) -> None:
        specimen = self.specimens.get(self._accession() or "")
        user = self.settings.signed_in
        allowed = user is not None and may(user, Permission.SIGN)
        self.sign_button.setEnabled(allowed and specimen is not None and specimen.state in SIGNABLE
                                    and not self.signer.busy)
        self.sign_button.setToolTip("" if allowed else "Only a supervisor or an admin may sign specimens off")

    def sign(self) -> None:
        accession, user, outbox = self._accession(), self.settings.signed_in, self.settings.outbox
        if accession is None or user is None:
            return
        if outbox is None:
            self.status.setText("Choose the LIS outbox first (File → Settings → LIS outbox): signed results go there.")
            return
        password, ok = QInputDialog.getText(self, "Sign off", f"Sign {accession} off as {user.full_name}.\n"
                                            "Your password:", QLineEdit.EchoMode.Password)
        if not ok:
            return
        meaning, ok = QInputDialog.getText(self, "Sign off", "What your signature means:", text=DEFAULT_MEANING)
        if not ok or not meaning.strip():
            return
        self.status.setText(f"Signing {accession}…")
        self.sign_button.setEnabled(False)
        self.signer.request(accession, user.name, password, meaning.strip(), outbox)

    def _sign_off(self, accession: str, name: str, password: str, meaning: str, outbox) -> SignedResult:
        return sign_off(self.store, accession, name, password, outbox=outbox, meaning=meaning, lab=self.settings.lab)

    def _signed(self, result: object) -> None:
        assert isinstance(result, SignedResult)
        kind = "Amendment signed" if result.signature.amends_id is not None else "Signed"
        self.status.setText(f"{kind}: {result.signature.finding}, by {result.signature.printed_name}. Sent "
                            f"{result.hl7_path.name} and {result.fhir_path.name} to {result.hl7_path.parent}.")
        self.refresh()

    def _refused(self, message: str) -> None:
        self.status.setText(f"Not signed: {message}")
        self._chosen()

    def stop_work(self) -> None:
        self.reader.stop()
        self.signer.stop()
