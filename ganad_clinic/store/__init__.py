"""The results database: specimens and their slides, append-only scores and their cells, reviews, signatures and
audit events, named users, the model registry.

SQLite (WAL) in the GANAD Clinic home folder by default; any SQLAlchemy URL, e.g. a PostgreSQL
shared by several workstations. `open_store()` migrates the schema to this version's head.
"""

from __future__ import annotations

from ganad_clinic.store.engine import resolve_home, resolve_url
from ganad_clinic.store.errors import AppendOnlyError, ClaimLost, DatabaseLostError, SignOffRefused, StoreError
from ganad_clinic.store.models import (
    AuditEvent,
    Cell,
    ModelVersion,
    Review,
    ReviewDecision,
    Score,
    Signature,
    Slide,
    SlideStatus,
    Specimen,
    Station,
    User,
    UserRole,
    answers_own_second_read,
)
from ganad_clinic.store.repository import (
    DRIFT_ALARM_CLEARED,
    DRIFT_ALARM_RAISED,
    OPERATING_POINT_SET,
    Judgement,
    NewScore,
    NewSlide,
    OperatingPointSetting,
    RecordedSlide,
    Store,
    TilingRecord,
    open_store,
)
from ganad_clinic.store.specimens import SpecimenState, SpecimenSummary
from ganad_clinic.store.summaries import SlideSummary

__all__ = [
    "AppendOnlyError",
    "AuditEvent",
    "Cell",
    "ClaimLost",
    "DatabaseLostError",
    "ModelVersion",
    "RecordedSlide",
    "Review",
    "ReviewDecision",
    "Score",
    "Signature",
    "SignOffRefused",
    "Specimen",
    "SpecimenState",
    "SpecimenSummary",
    "Station",
    "User",
    "UserRole",
    "Slide",
    "SlideStatus",
    "SlideSummary",
    "Store",
    "StoreError",
    "TilingRecord",
    "Judgement",
    "NewScore",
    "NewSlide",
    "OperatingPointSetting",
    "OPERATING_POINT_SET",
    "DRIFT_ALARM_RAISED",
    "DRIFT_ALARM_CLEARED",
    "answers_own_second_read",
    "open_store",
    "resolve_home",
    "resolve_url",
]
