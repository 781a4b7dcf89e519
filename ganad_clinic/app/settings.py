"""The app's settings, kept in QSettings (the platform's usual place, or an ini file in tests).

Each setting is declared once, in SETTINGS: its QSettings key, its default (imported from the
part of the package that owns it, never retyped), its title and help for the settings dialog, and
how its value is checked. `AppSettings`' typed properties and the dialog's rows are derived from
these declarations (as napari derives its preferences from `napari/settings/_application.py`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from ganad_clinic.app.viewer import DEFAULT_OPACITY_PERCENT
from ganad_clinic.model.trainer import TrainConfig
from ganad_clinic.screening.registry import current_actor
from ganad_clinic.screening.service import DEFAULT_RESCAN_SECONDS, STATION_NAME_LENGTH, ServiceConfig
from ganad_clinic.screening.specimens import compile_pattern
from ganad_clinic.store import User

ORGANIZATION = "GANAD Clinic"
APPLICATION = "ganad-clinic"


def field_default(config: type, name: str) -> Any:
    """The default of a dataclass field: the owner's value, read rather than retyped."""
    [found] = [field for field in dataclasses.fields(config) if field.name == name]
    return found.default if found.default_factory is dataclasses.MISSING else found.default_factory()


DEFAULT_LAMBDA = field_default(TrainConfig, "lam")
DEFAULT_BETA = field_default(TrainConfig, "beta")
DEFAULT_FIELD_SCALE = field_default(ServiceConfig, "field_scale")


class Section(enum.Enum):
    """Which dialog shows a setting: what a technician sets to review, or what belongs to training
    and the model (kept off the review screen's Settings, where it was mistaken for a review knob)."""

    REVIEW = "Settings"
    MODEL = "Training and model settings"


class Kind(enum.Enum):
    """What a setting holds, and so how it is stored and which editor the dialog gives it."""

    TEXT = "text"  # str
    FOLDER = "folder"  # Path | None (stored as "" for None)
    FOLDERS = "folders"  # list[Path] (stored as a list of strings)
    FLAG = "flag"  # bool
    NUMBER = "number"  # float within [minimum, maximum]
    INTEGER = "integer"  # int within [minimum, maximum]
    IDS = "ids"  # list[int] (stored as a list of strings)


@dataclass(frozen=True)
class Setting:
    """One setting. `name` is the AppSettings property, `key` the QSettings key (and the name in
    the audit trail); `in_dialog` False: set elsewhere (the report dialog, the viewer's slider)."""

    name: str
    key: str
    kind: Kind
    default: Any
    title: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float = 1.0
    decimals: int = 2
    suffix: str = ""
    strip: bool = False  # TEXT: surrounding spaces dropped, read and written
    in_dialog: bool = True
    section: Section = Section.REVIEW
    validate: Callable[[str], None] | None = None  # TEXT: raises ValueError, in words, for a value not allowed

    def check(self, value: Any) -> Any:
        """The value in the setting's type; ValueError when it is of the wrong kind or out of range."""
        if self.kind is Kind.TEXT:
            text = str(value).strip() if self.strip else str(value)
            if self.validate is not None:
                self.validate(text)
            return text
        if self.kind is Kind.FOLDER:
            return None if value is None or str(value) == "" else Path(value)
        if self.kind is Kind.FOLDERS:
            return [Path(folder) for folder in value]
        if self.kind is Kind.IDS:
            return [int(number) for number in value]
        if self.kind is Kind.FLAG:
            return bool(value)
        number = float(value) if self.kind is Kind.NUMBER else int(value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise ValueError(f"{self.title} must be between {self.minimum:g} and {self.maximum:g}, not {number:g}")
        return number

    def from_stored(self, stored: Any) -> Any:
        """What QSettings gave back, as the setting's value: the default when it cannot be read, and
        a number out of range brought into it (the dialog's spin box would show it so)."""
        if self.kind is Kind.FOLDERS:
            if isinstance(stored, str):  # QSettings gives a lone string for a one-item list in ini files
                stored = [stored]
            return [Path(text) for text in stored or [] if text]
        if self.kind is Kind.IDS:
            stored = [stored] if isinstance(stored, (str, int)) else stored or []
            return [int(text) for text in stored if str(text).isdigit()]
        if self.kind is Kind.FLAG and isinstance(stored, str):
            return stored.lower() == "true"
        try:
            if self.kind in (Kind.NUMBER, Kind.INTEGER):
                number = float(stored) if self.kind is Kind.NUMBER else int(stored)
                low = -float("inf") if self.minimum is None else self.minimum
                high = float("inf") if self.maximum is None else self.maximum
                return type(number)(min(max(number, low), high))
            return self.check(stored)
        except (TypeError, ValueError):
            return self.default

    def to_stored(self, value: Any) -> Any:
        """The value as QSettings keeps it (and as the audit trail records it)."""
        value = self.check(value)
        if self.kind is Kind.FOLDER:
            return "" if value is None else str(value)
        if self.kind in (Kind.FOLDERS, Kind.IDS):
            return [str(item) for item in value]
        return value


def _check_accession_pattern(pattern: str) -> None:
    """An empty pattern is the default rule; any other must compile (ConfigError is a ValueError)."""
    if pattern:
        compile_pattern(pattern)


def _check_station_name(name: str) -> None:
    if len(name) > STATION_NAME_LENGTH:
        raise ValueError(f"a station name has at most {STATION_NAME_LENGTH} characters, not {len(name)}")


RETRAIN_HELP = ("Used by the next retrain. A model's threshold and score normalisation are fitted with its own λ and "
                "β, so these cannot change the scores of an existing model without retraining it.")

SETTINGS: tuple[Setting, ...] = (
    Setting("home", "home", Kind.FOLDER, None, "Data folder",
            "Database, models and heat maps. Applies at the next start of the app."),
    Setting("watched_folders", "watched_folders", Kind.FOLDERS, [], "Watched folders"),
    Setting("poll", "poll", Kind.FLAG, field_default(ServiceConfig, "poll"),
            "Poll the folders (network shares, where change events are not delivered)"),
    Setting("rescan_seconds", "rescan_seconds", Kind.NUMBER, DEFAULT_RESCAN_SECONDS, "Full rescan every",
            minimum=2.0, maximum=3600.0, suffix=" s"),
    Setting("field_scale", "field_scale", Kind.NUMBER, DEFAULT_FIELD_SCALE, "Field pixel scale",
            "Pixel scale of large field images relative to the training crops: how a field is cut into cells for "
            "the model. Applies to slides scored from now on.",
            minimum=0.05, maximum=8.0, step=0.05, section=Section.MODEL),
    Setting("lam", "lambda", Kind.NUMBER, DEFAULT_LAMBDA, "λ (critic vs pixels)", minimum=0.0, maximum=1.0, step=0.05,
            section=Section.MODEL),
    Setting("beta", "beta", Kind.NUMBER, DEFAULT_BETA, "β (latent)", RETRAIN_HELP, minimum=0.0, maximum=100.0,
            step=0.1, section=Section.MODEL),
    Setting("accession_pattern", "accession_pattern", Kind.TEXT, "", "Accession from file names",
            "A regular expression with a group named accession, e.g. ^(?P<accession>[A-Z]+-\\d+)_ . Empty: a "
            "subfolder directly under a watched folder is one specimen, a file directly in it a specimen of its own. "
            "Applies to files received from now on.", strip=True, validate=_check_accession_pattern),
    Setting("station", "station", Kind.TEXT, "", "Station name",
            "This computer's name among the screening stations on a shared database, stored with every score it "
            "makes. Empty: the host name. Applies when screening restarts.", strip=True,
            validate=_check_station_name),
    Setting("outbox", "outbox", Kind.FOLDER, None, "LIS outbox",
            "Signed results go here as HL7 v2.5.1 ORU^R01 messages and FHIR DiagnosticReports, for the laboratory "
            "information system to collect."),
    Setting("lab", "lab", Kind.TEXT, "", "Laboratory", "Printed on the reports.", in_dialog=False),
    Setting("overlay_opacity", "overlay_opacity", Kind.INTEGER, DEFAULT_OPACITY_PERCENT, "Heat map opacity",
            minimum=0, maximum=100, suffix=" %", in_dialog=False),
    Setting("show_details", "show_details", Kind.FLAG, False, "Details under the slide", in_dialog=False),
    Setting("seen_up_to", "seen_up_to", Kind.INTEGER, 0, "Newest slide already in the queue when last closed",
            minimum=0, in_dialog=False),
    Setting("unseen", "unseen", Kind.IDS, [], "Slides marked new and not yet selected", in_dialog=False),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def _property(setting: Setting) -> property:
    def get(self: AppSettings) -> Any:
        stored = self.qsettings.value(setting.key, setting.to_stored(setting.default))
        return setting.from_stored(stored)

    def put(self: AppSettings, value: Any) -> None:
        self.qsettings.setValue(setting.key, setting.to_stored(value))
        self.qsettings.sync()

    return property(get, put, doc=f"{setting.title}{': ' + setting.help if setting.help else ''}")


class AppSettings:
    """Typed access to the settings (one property per declaration in SETTINGS); every value has a
    default, so a fresh install just works.

    λ and β are those of the next retrain: a trained model keeps the ones it was calibrated with.
    What is flagged is never a setting here: each score's stored flag is shown (the lab's operating
    point is stated in the audit trail, `Store.set_target_fpr`).
    """

    # the properties, for readers and type checkers; their code comes from SETTINGS below
    home: Path | None
    watched_folders: list[Path]
    poll: bool
    rescan_seconds: float
    accession_pattern: str
    station: str
    outbox: Path | None
    field_scale: float
    lam: float
    beta: float
    lab: str
    overlay_opacity: int
    show_details: bool
    seen_up_to: int
    unseen: list[int]

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.signed_in: User | None = None  # who signed in at the start (never kept in the settings)

    def actor(self) -> str:
        """Who the audit trail names for this user's actions: the signed-in user, else the system user."""
        return self.signed_in.name if self.signed_in is not None else current_actor()

    def printed_name(self) -> str:
        """Who a printed report names: the signed-in user's full name with their sign-in name."""
        user = self.signed_in
        return f"{user.full_name} ({user.name})" if user is not None else current_actor()


def _derive(cls: type, settings: tuple[Setting, ...]) -> None:
    for setting in settings:
        setattr(cls, setting.name, _property(setting))
    missing = {setting.name for setting in settings} ^ set(cls.__annotations__)
    if missing:
        raise AssertionError(f"AppSettings' annotations and SETTINGS differ: {sorted(missing)}")


_derive(AppSettings, SETTINGS)
