"""The app's settings, kept in QSettings (the platform's usual place, or an ini file in tests)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ganad_clinic.model.trainer import TrainConfig
from ganad_clinic.screening.registry import current_actor
from ganad_clinic.screening.service import DEFAULT_RESCAN_SECONDS

DEFAULT_LAMBDA = TrainConfig.lam
DEFAULT_BETA = TrainConfig.beta
ORGANIZATION = "GANAD Clinic"
APPLICATION = "ganad-clinic"


class AppSettings:
    """Typed access to the settings; every value has a default, so a fresh install just works.

    λ and β are those of the next retrain: a trained model keeps the ones it was calibrated with.
    `threshold_offset` is added to each score's threshold when the app decides what to show as flagged.
    """

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    def _get(self, key: str, default, kind: type):
        value = self.qsettings.value(key, default)
        if kind is bool and isinstance(value, str):
            return value.lower() == "true"
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _set(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)
        self.qsettings.sync()

    @property
    def reviewer(self) -> str:
        return self._get("reviewer", "", str).strip()

    @reviewer.setter
    def reviewer(self, name: str) -> None:
        self._set("reviewer", name.strip())

    @property
    def home(self) -> Path | None:
        """The data folder (database, models, heat maps); None: GANAD Clinic's default."""
        text = self._get("home", "", str)
        return Path(text) if text else None

    @home.setter
    def home(self, folder: Path | None) -> None:
        self._set("home", "" if folder is None else str(folder))

    @property
    def watched_folders(self) -> list[Path]:
        value = self.qsettings.value("watched_folders", [])
        if isinstance(value, str):  # QSettings gives a lone string for a one-item list in ini files
            value = [value]
        return [Path(text) for text in value or [] if text]

    @watched_folders.setter
    def watched_folders(self, folders: list[Path]) -> None:
        self._set("watched_folders", [str(folder) for folder in folders])

    @property
    def poll(self) -> bool:
        return self._get("poll", False, bool)

    @poll.setter
    def poll(self, value: bool) -> None:
        self._set("poll", bool(value))

    @property
    def rescan_seconds(self) -> float:
        return self._get("rescan_seconds", DEFAULT_RESCAN_SECONDS, float)

    @rescan_seconds.setter
    def rescan_seconds(self, value: float) -> None:
        self._set("rescan_seconds", float(value))

    @property
    def field_scale(self) -> float:
        return self._get("field_scale", 1.0, float)

    @field_scale.setter
    def field_scale(self, value: float) -> None:
        self._set("field_scale", float(value))

    @property
    def threshold_offset(self) -> float:
        return self._get("threshold_offset", 0.0, float)

    @threshold_offset.setter
    def threshold_offset(self, value: float) -> None:
        self._set("threshold_offset", float(value))

    @property
    def lam(self) -> float:
        return self._get("lambda", DEFAULT_LAMBDA, float)

    @lam.setter
    def lam(self, value: float) -> None:
        self._set("lambda", float(value))

    @property
    def beta(self) -> float:
        return self._get("beta", DEFAULT_BETA, float)

    @beta.setter
    def beta(self, value: float) -> None:
        self._set("beta", float(value))

    @property
    def lab(self) -> str:
        return self._get("lab", "", str)

    @lab.setter
    def lab(self, name: str) -> None:
        self._set("lab", name)

    @property
    def overlay_opacity(self) -> int:
        return self._get("overlay_opacity", 50, int)

    @overlay_opacity.setter
    def overlay_opacity(self, percent: int) -> None:
        self._set("overlay_opacity", int(percent))

    def actor(self) -> str:
        """Who the audit trail names for this user's actions: the reviewer, else the system user."""
        return self.reviewer or current_actor()
