"""`ganad db verify`: is the database as GANAD Clinic wrote it?

Checks that every guarding trigger exists (on PostgreSQL, that it is enabled), that the hash
chains of scores, reviews, audit events and signatures are unbroken (store.chain), that every score's cells
match the digest in its (chained) row, and that the slides agree with their scores. It only
reads; a database not yet at this version's schema is refused rather than upgraded, since
upgrading would hash whatever rows it holds.

What it cannot see: someone who rewrites a whole chain with this published algorithm, or removes
the newest rows of a chain (nothing comes after them to break). Keep the chain heads it prints
(e.g. in the daily report or a logbook): a later head that does not descend from them shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, and_, create_engine, exists, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlalchemy.pool import NullPool

from ganad_clinic.store.chain import CHAINED_MODELS, HASH_COLUMN, cells_digest, chained_columns, row_hash
from ganad_clinic.store.engine import display_url, plain_reason, sqlite_file
from ganad_clinic.store.errors import StoreError
from ganad_clinic.store.migrate import database_revisions, head_revision
from ganad_clinic.store.models import Cell, Score, Slide, SlideStatus

# trigger name -> table; what revisions 0001, 0003, 0004 and 0007 create.
_CHAINED = ("scores", "reviews", "audit_events", "signatures")
EXPECTED_TRIGGERS = {
    "sqlite": {
        **{f"{table}_no_{operation}": table for table in _CHAINED for operation in ("update", "delete")},
        **{f"{table}_hash_required": table for table in _CHAINED},
        "slides_specimen_once": "slides",
        **{
            name: "slides"
            for name in (
                "slides_no_delete", "slides_status_forward", "slides_duplicate_once", "slides_archived_once",
                "slides_identity_fixed",
            )
        },
        "scores_slide_scoreable": "scores",
        "cells_no_update": "cells",
        "cells_no_delete": "cells",
    },
    "postgresql": {
        **{f"{table}_append_only": table for table in _CHAINED},
        **{f"{table}_hash_required": table for table in _CHAINED},
        "slides_guard": "slides",
        "slides_specimen_once": "slides",
        "slides_no_truncate": "slides",
        "scores_slide_scoreable": "scores",
        "cells_append_only": "cells",
    },
}
_PG_ENABLED = {"O", "A"}  # pg_trigger.tgenabled: fires on origin / always; "D" is disabled, "R" replica only
_STREAM_ROWS = 1000


@dataclass
class Verification:
    """What `verify_database` found: problems (empty when sound), and what was checked."""

    url: str
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    heads: dict[str, str | None] = field(default_factory=dict)
    triggers: int = 0
    cells: int = 0
    slides: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line for a sound database: what was checked, with the chain heads to keep."""
        chains = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in self.rows.items())
        heads = ", ".join(f"{table} {(head or 'empty')[:16]}" for table, head in self.heads.items())
        return (
            f"database {display_url(self.url)} verified: chains intact ({chains}; heads {heads}), "
            f"{self.cells} cells match their scores, {self.triggers} triggers in place, {self.slides} slides consistent"
        )


def verify_database(url: str) -> Verification:
    """Check the database at `url` without changing it. Raises StoreError when it cannot be read
    or is not at this version's schema."""
    database_file = sqlite_file(url)
    if database_file is not None and not database_file.exists():
        raise StoreError(f"there is no database {database_file}")
    revisions = database_revisions(url)
    if revisions != (head_revision(),):
        found = ", ".join(revisions) or "none"
        raise StoreError(
            f"database {display_url(url)} is at revision {found}, not {head_revision()}: "
            "run `ganad db upgrade` first"
        )
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return _verify(connection, Verification(url))
    except DBAPIError as error:
        raise StoreError(f"cannot read database {display_url(url)}: {plain_reason(error)}") from error
    finally:
        engine.dispose()


def _verify(connection: Connection, verification: Verification) -> Verification:
    verification.problems += _trigger_problems(connection, verification)
    for model in CHAINED_MODELS:
        problem = _chain_problem(connection, model.__table__, verification)  # type: ignore[arg-type]
        if problem:
            verification.problems.append(problem)
    problem = _cells_problem(connection, verification)
    if problem:
        verification.problems.append(problem)
    verification.problems += _slide_problems(connection)
    verification.slides = connection.scalar(select(func.count()).select_from(Slide)) or 0
    return verification


def _trigger_problems(connection: Connection, verification: Verification) -> list[str]:
    dialect = connection.dialect.name
    expected = EXPECTED_TRIGGERS.get(dialect, {})
    if dialect == "sqlite":
        names = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
        found = {name: "O" for name in names}  # SQLite triggers cannot be disabled, only dropped
    else:
        found = dict(
            connection.execute(
                text(
                    "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
                )
            ).all()
        )
    problems = []
    for name, table in expected.items():
        if name not in found:
            problems.append(f"trigger {name} on {table} is missing: {table} is no longer guarded against changes")
        elif found[name] not in _PG_ENABLED:
            problems.append(
                f"trigger {name} on {table} is disabled: {table} is no longer guarded against changes "
                f"(the table's owner can run ALTER TABLE {table} ENABLE TRIGGER {name})"
            )
    verification.triggers = len(expected) - len(problems)
    return problems


def _chain_problem(connection: Connection, table: Table, verification: Verification) -> str | None:
    """The first row of `table` whose hash does not follow from its content and its predecessor."""
    columns = chained_columns(table)
    rows = connection.execution_options(yield_per=_STREAM_ROWS).execute(select(table).order_by(table.c.id))
    previous: str | None = None
    count = 0
    for row in rows.mappings():
        count += 1
        stored = row[HASH_COLUMN]
        if stored is None:
            rows.close()
            return f"{table.name} row {row['id']} has no row hash: it was not written by GANAD Clinic"
        if stored != row_hash(table.name, previous, {name: row[name] for name in columns}):
            rows.close()
            return (
                f"{table.name} row {row['id']} does not match its hash: it was changed, or a row before it "
                "was inserted, changed or deleted, after GANAD Clinic wrote it"
            )
        previous = stored
    verification.rows[table.name] = count
    verification.heads[table.name] = previous
    return None


def _cells_problem(connection: Connection, verification: Verification) -> str | None:
    """The first score whose cells are not those its row's digest says (changed, added, removed)."""
    digests = dict(connection.execute(select(Score.id, Score.cells_sha256)).all())
    rows = connection.execution_options(yield_per=_STREAM_ROWS).execute(
        select(Cell).order_by(Cell.score_id, Cell.cell_index)
    )
    count = 0
    current: int | None = None
    cells: list[dict] = []
    seen: set[int] = set()

    def settled() -> str | None:
        if current is not None and digests.get(current) != cells_digest(cells):
            return (f"the cells of scores row {current} do not match the digest in that row: a cell was changed, "
                    "added or removed")
        return None

    for row in rows.mappings():
        count += 1
        if row["score_id"] != current:
            problem = settled()
            if problem:
                rows.close()
                return problem
            current, cells = row["score_id"], []
            seen.add(current)
        cells.append(dict(row))
    problem = settled()
    if problem:
        return problem
    verification.cells = count
    missing = sorted(score_id for score_id, digest in digests.items() if digest is not None and score_id not in seen)
    if missing:
        return f"the cells of scores row {missing[0]} are missing: its row records cells that are no longer there"
    return None


def _slide_problems(connection: Connection) -> list[str]:
    """The first slide breaking each rule that ties slides to their scores."""
    has_score = exists().where(Score.slide_id == Slide.id)
    original = aliased(Slide)
    good_original = exists().where(
        and_(
            original.id == Slide.duplicate_of_id,
            original.status == SlideStatus.SCORED,
            original.duplicate_of_id.is_(None),
            original.sha256 == Slide.sha256,
        )
    )
    rules = [
        (
            and_(Slide.status == SlideStatus.SCORED, Slide.duplicate_of_id.is_(None), ~has_score),
            "is marked scored but has no score",
        ),
        (Slide.duplicate_of_id.is_not(None) & ~good_original,
         "is a duplicate of a slide that is not a scored original with the same content"),
        (Slide.duplicate_of_id.is_not(None) & has_score, "is a duplicate but has scores of its own"),
        (and_(Slide.status != SlideStatus.SCORED, has_score), "has a score but is not marked scored"),
    ]
    problems = []
    for condition, what in rules:
        slide = connection.execute(
            select(Slide.id, Slide.status, Slide.duplicate_of_id).where(condition).order_by(Slide.id).limit(1)
        ).one_or_none()
        if slide is not None:
            link = "" if slide.duplicate_of_id is None else f", duplicate of slide {slide.duplicate_of_id}"
            problems.append(f"slides row {slide.id} ({slide.status.value}{link}) {what}")
    return problems
