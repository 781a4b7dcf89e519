"""Hash chains over the append-only tables: tampering with a result becomes evident.

Each row of scores, reviews, audit_events and signatures (0007) carries `row_hash`, the sha256 of its content (every
column, canonically serialised, floats exactly) and of the previous row's hash in the same table.
Changing, inserting or deleting a row with SQL breaks the chain at that row; `ganad db verify`
finds it. One chain per table, in id order: each table is verified on its own, by one ordered scan,
and a row's place in its chain is its id, which the Store assigns under the chain lock.

Appends are serialised so that concurrent writers never chain two rows to the same predecessor:
on SQLite by the write lock every write transaction takes up front (BEGIN IMMEDIATE), on
PostgreSQL by one transaction-scoped advisory lock shared by all the chains (one lock, so two
chains appended in one transaction cannot deadlock).

The format below (CHAIN_FORMAT 1) is frozen: revision 0003 holds a copy to hash the rows that
existed before it, and a change would need a new revision that re-hashes every row.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Table, select, text
from sqlalchemy.orm import Session

from ganad_clinic.store.models import AuditEvent, Base, Review, Score, Signature

CHAIN_FORMAT = 1
HASH_COLUMN = "row_hash"
CHAINED_MODELS: tuple[type[Base], ...] = (Score, Review, AuditEvent, Signature)
# Any fixed number, distinct from the migration lock's.
_PG_CHAIN_LOCK_KEY = 0x6A4AE


def chained_columns(table: Table) -> list[str]:
    """The columns a row's hash covers: all of them but the hash itself."""
    return [column.name for column in table.columns if column.name != HASH_COLUMN]


def row_hash(table_name: str, previous_hash: str | None, values: Mapping[str, Any]) -> str:
    """The hash of one row, given the hash of the row before it (None for the first row).

    NULL columns are left out, so a nullable column added by a later revision (NULL in the rows
    before it) leaves the earlier hashes valid."""
    payload = {
        "format": CHAIN_FORMAT,
        "table": table_name,
        "previous": previous_hash,
        "row": {name: _canonical(value) for name, value in values.items() if value is not None},
    }
    serialised = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(serialised.encode("ascii")).hexdigest()


CELL_DIGEST_COLUMNS = ("cell_index", "x", "y", "width", "height", "found_by", "score", "l_d", "l_r", "l_l", "flagged",
                       "p_value")
"""The columns of a cells row its score's `cells_sha256` covers: all but its own id and its score's
(NULL ones left out, as in row_hash, so cells written before a nullable column keep their digest)."""


def cells_digest(cells: Sequence[Mapping[str, Any]]) -> str:
    """The digest of a score's cells (in cell_index order), kept in the score's row and so in its
    chained hash: a cell changed, added or removed behind the triggers' back breaks it."""
    rows = sorted(({name: _canonical(cell[name]) for name in CELL_DIGEST_COLUMNS if cell.get(name) is not None}
                   for cell in cells), key=lambda row: row["cell_index"])
    payload = {"format": CHAIN_FORMAT, "table": "cells", "rows": rows}
    serialised = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(serialised.encode("ascii")).hexdigest()


def append(session: Session, row: Base) -> None:
    """Add `row` to its table's chain and flush it (see `append_all`)."""
    append_all(session, [row])


def append_all(session: Session, rows: Sequence[Base]) -> None:
    """Add `rows` (of one table) to its chain in their order and flush them: lock the chain, give
    each row the next id and its defaults, hash each onto the one before it, the first onto the
    current head. One look-up of the head and one flush for them all. Call inside a write transaction."""
    if not rows:
        return
    table: Table = rows[0].__table__  # type: ignore[assignment]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CHAIN_LOCK_KEY})
    head = session.execute(
        select(table.c.id, table.c[HASH_COLUMN]).order_by(table.c.id.desc()).limit(1)
    ).one_or_none()
    head_id, head_hash = (None, None) if head is None else (head.id, head[1])
    for row in rows:
        assert row.__table__ is table, "one chain at a time"
        row.id = head_id = _next_id(session, table, head_id)  # type: ignore[attr-defined]
        _normalise(row, table)
        values = {name: getattr(row, name) for name in chained_columns(table)}
        head_hash = row_hash(table.name, head_hash, values)
        setattr(row, HASH_COLUMN, head_hash)
    session.add_all(rows)
    session.flush()


def _next_id(session: Session, table: Table, head_id: int | None) -> int:
    """On PostgreSQL the table's own sequence (raw inserts keep working); on SQLite the id SQLite
    would choose itself, one past the largest."""
    if session.get_bind().dialect.name == "postgresql":
        return int(
            session.scalar(text("SELECT nextval(pg_get_serial_sequence(:table, 'id'))"), {"table": table.name})
        )
    return (head_id or 0) + 1


def _normalise(row: Base, table: Table) -> None:
    """Make the row hold what the database will give back, since that is what verify hashes:
    the Python-side defaults (times, empty notes) filled in now, floating-point columns as floats."""
    for column in table.columns:
        value = getattr(row, column.key)
        default = column.default
        if value is None and default is not None:
            value = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
        if value is not None and isinstance(column.type, Float):
            value = float(value)
        setattr(row, column.key, value)


def _canonical(value: Any) -> Any:
    """One spelling per value: floats in hex (exact), times in UTC to the microsecond, enums by
    value, JSON as the database gives it back."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, datetime):
        return {"time": value.astimezone(UTC).isoformat(timespec="microseconds")}
    if isinstance(value, (dict, list, tuple)):
        return {"json": json.loads(json.dumps(value))}
    raise TypeError(f"cannot hash a {type(value).__name__} value: {value!r}")
