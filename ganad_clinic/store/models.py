"""ORM tables of the results database.

Scores, reviews and audit events are append-only: a re-score, a changed review or a correction
adds a row, so no earlier result is ever lost (21 CFR 11.10(e)). The ORM listeners at the bottom
refuse changes made through a session; the migrations add database triggers that refuse raw SQL,
and each append-only row carries a hash chained to the previous row's (store.chain), so an edit
made behind the triggers' back is found by `ganad db verify`. Slides are never deleted, their
status only moves forward (pending -> scored | rejected) and their links are set once (triggers).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from ganad_clinic.store.errors import AppendOnlyError

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no time zone, so values are converted to UTC on the way in and marked UTC on
    the way out; naive datetimes are refused because their meaning is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class SlideStatus(enum.Enum):
    PENDING = "pending"
    SCORED = "scored"
    REJECTED = "rejected"


class UserRole(enum.Enum):
    """What a user may do: technicians review; supervisors also sign off, override an acceptance
    check and change the operating point; admins also manage users."""

    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class ReviewDecision(enum.Enum):
    ANOMALY_CONFIRMED = "anomaly_confirmed"
    NORMAL = "normal"
    SECOND_READ = "second_read"


def _string_enum(enum_class: type[enum.Enum], name: str) -> Enum:
    """An enum stored as its values in a VARCHAR with a CHECK, identical on SQLite and PostgreSQL."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Specimen(Base):
    """One patient's smear under its accession number: the images the scanner delivered of it are
    its slides. Signed off as a whole (`Signature`)."""

    __tablename__ = "specimens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), unique=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Slide(Base):
    """One received file. The same (path, content) is one slide, so ingest is idempotent."""

    __tablename__ = "slides"
    __table_args__ = (UniqueConstraint("path", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    source_folder: Mapped[str] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[SlideStatus] = mapped_column(
        _string_enum(SlideStatus, "slide_status"), default=SlideStatus.PENDING, index=True
    )
    reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("slides.id"))
    archived_path: Mapped[str | None] = mapped_column(Text)
    specimen_id: Mapped[int | None] = mapped_column(ForeignKey("specimens.id"), index=True)  # set once (0007)
    claimed_by: Mapped[str | None] = mapped_column(String(64), index=True)  # the station scoring it (0008)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ... until then, unless renewed


class Station(Base):
    """A screening station on this database (0008): its name, where it runs, its last heartbeat.
    A station that stopped cleanly says so; one whose heartbeat is older than a lease is gone."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    """A named account. The password is kept only as an argon2 hash; a disabled user cannot act.
    Changes to a user are audited (`audit_events`), the row itself holds the current state."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(255))  # the printed name on a signature
    role: Mapped[UserRole] = mapped_column(_string_enum(UserRole, "user_role"))
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)  # since the last successful one
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ModelVersion(Base):
    """A registered model bundle. At most one row is active (a partial unique index says so)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    bundle_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acceptance_report: Mapped[str | None] = mapped_column(Text)  # PDF of its latest acceptance check


class Score(Base):
    """One scoring of a slide (append-only). The latest row (highest id) is the current score."""

    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_slide_id_id", "slide_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    model_version: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    l_d: Mapped[float] = mapped_column(Float)
    l_r: Mapped[float] = mapped_column(Float)
    l_l: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean)
    heatmap_path: Mapped[str | None] = mapped_column(Text)
    tiling: Mapped[str | None] = mapped_column(Text)  # how the slide was tiled, in words; None before 0002
    # What decided the tiles (imaging.tiling.TilingRule), so a recompute uses exactly these; None before 0004.
    tiling_rule: Mapped[str | None] = mapped_column(String(16))  # "whole image" | "white cells" | "grid"
    crop_size: Mapped[int | None] = mapped_column(Integer)  # the crops' field of view, in crop pixels
    field_scale: Mapped[float | None] = mapped_column(Float)  # field pixels per crop pixel
    tile_overlap: Mapped[float | None] = mapped_column(Float)  # of the grid's tiles
    cells_sha256: Mapped[str | None] = mapped_column(String(64))  # digest of its cells rows (store.chain)
    p_value: Mapped[float | None] = mapped_column(Float)  # the slide's conformal p-value; None before 0005
    target_fpr: Mapped[float | None] = mapped_column(Float)  # the slide false-positive rate it was flagged at
    kept_fpr: Mapped[float | None] = mapped_column(Float)  # the rate its calibration keeps for its cell count
    calibration_n: Mapped[int | None] = mapped_column(Integer)  # calibration normals behind the p-values
    warning: Mapped[str | None] = mapped_column(Text)  # a plain-words caveat: "page 1 of 3 scored"
    duration_seconds: Mapped[float] = mapped_column(Float)
    station: Mapped[str | None] = mapped_column(String(64))  # the station that made it; None before 0008
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    row_hash: Mapped[str | None] = mapped_column(String(64))  # see store.chain; set by the Store


class Cell(Base):
    """One tile of a scored slide (append-only, written with its score): a white cell, a grid
    tile, or the whole of a crop; its box in slide pixels, its score and terms and its flag."""

    __tablename__ = "cells"
    __table_args__ = (UniqueConstraint("score_id", "cell_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score_id: Mapped[int] = mapped_column(ForeignKey("scores.id"))
    cell_index: Mapped[int] = mapped_column(Integer)  # its place in the slide's tile plan, from 0
    x: Mapped[int] = mapped_column(Integer)  # left column, slide pixels
    y: Mapped[int] = mapped_column(Integer)  # top row, slide pixels
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    found_by: Mapped[str] = mapped_column(String(16))  # "whole image" | "white cell" | "grid"
    score: Mapped[float] = mapped_column(Float)
    l_d: Mapped[float] = mapped_column(Float)
    l_r: Mapped[float] = mapped_column(Float)
    l_l: Mapped[float] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean)
    p_value: Mapped[float | None] = mapped_column(Float)  # its conformal p-value; None before 0005


class Review(Base):
    """One reviewer decision on a slide, or the withdrawal of one (append-only). The current
    review is the latest decision not withdrawn; a withdrawal (`withdraws_id` set) repeats the
    decision it withdraws, so the row reads on its own, and is never a current review itself."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_slide_id_id", "slide_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"))
    reviewer: Mapped[str] = mapped_column(String(128))
    decision: Mapped[ReviewDecision] = mapped_column(_string_enum(ReviewDecision, "review_decision"))
    note: Mapped[str] = mapped_column(Text, default="")
    withdraws_id: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)  # None before 0006
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    row_hash: Mapped[str | None] = mapped_column(String(64))


def answers_own_second_read(current: Review | None, reviewer: str, decision: ReviewDecision) -> bool:
    """Whether `reviewer` would give the second read they asked for themselves: a second read is
    another person's (the store refuses it, the app says so before asking the store)."""
    return (current is not None and current.decision is ReviewDecision.SECOND_READ and current.reviewer == reviewer
            and decision is not ReviewDecision.SECOND_READ)


class Signature(Base):
    """A specimen signed off (append-only, chained): who (printed name and role), when, what the
    signature means, the model and operating point in force, the reviews it covers (up to
    `reviews_up_to`; a later review of the specimen is an amendment) and the digest of its images'
    current scores and reviews. A signature after an earlier one (`amends_id`) signs an amendment."""

    __tablename__ = "signatures"
    __table_args__ = (Index("ix_signatures_specimen_id_id", "specimen_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    printed_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    meaning: Mapped[str] = mapped_column(Text)
    finding: Mapped[str] = mapped_column(String(16))  # "abnormal" | "normal"
    model_version: Mapped[str | None] = mapped_column(String(64))
    target_fpr: Mapped[float | None] = mapped_column(Float)
    reviews_up_to: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)  # MSH-10 and the FHIR report's identifier
    amends_id: Mapped[int | None] = mapped_column(Integer)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    """Who did what and when (append-only)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    row_hash: Mapped[str | None] = mapped_column(String(64))


AppendOnlyRow = Score | Cell | Review | AuditEvent | Signature
APPEND_ONLY_MODELS: tuple[type[AppendOnlyRow], ...] = (Score, Cell, Review, AuditEvent, Signature)


def _refuse_change(mapper: Mapper[Any], connection: Any, target: AppendOnlyRow) -> None:
    table = cast(Table, mapper.local_table).name  # each model maps one declared table
    raise AppendOnlyError(
        f"{table} is append-only: row {target.id} cannot be changed or deleted; add a new row instead"
    )


for _model in APPEND_ONLY_MODELS:
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)
