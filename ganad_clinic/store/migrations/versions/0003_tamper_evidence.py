"""Tamper evidence: hash chains over the append-only tables, slides guarded by triggers; and a
plain-words warning on scores ("page 1 of 3 scored").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Each row of scores, reviews and audit_events gets `row_hash` (see ganad_clinic.store.chain); the
rows already there are hashed here, in id order, so an upgraded database verifies. Inserting a
row without a hash is refused. Slides can no longer be deleted, their status only moves forward
(pending -> scored | rejected), duplicate_of_id is set once and only on a pending slide,
archived_path is set once, and what identifies the file (path, name, content hash, size, folder,
first seen) never changes. A score for a duplicate or a rejected slide is refused (the duplicate's
result is its original's).

Written out in full, the hash format included (a frozen copy of store.chain's), so this revision
stays what it was when the code changes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHAIN_FORMAT = 1
BATCH = 1000
_TIME = sa.DateTime(timezone=True)
CHAINED_TABLES = {
    "scores": sa.table(
        "scores",
        sa.column("id", sa.Integer()), sa.column("slide_id", sa.Integer()),
        sa.column("model_version_id", sa.Integer()), sa.column("model_version", sa.String()),
        sa.column("model_sha256", sa.String()), sa.column("score", sa.Float()), sa.column("l_d", sa.Float()),
        sa.column("l_r", sa.Float()), sa.column("l_l", sa.Float()), sa.column("threshold", sa.Float()),
        sa.column("flagged", sa.Boolean()), sa.column("heatmap_path", sa.Text()), sa.column("tiling", sa.Text()),
        sa.column("warning", sa.Text()), sa.column("duration_seconds", sa.Float()), sa.column("created_at", _TIME),
        sa.column("row_hash", sa.String()),
    ),
    "reviews": sa.table(
        "reviews",
        sa.column("id", sa.Integer()), sa.column("slide_id", sa.Integer()), sa.column("reviewer", sa.String()),
        sa.column("decision", sa.String()), sa.column("note", sa.Text()), sa.column("created_at", _TIME),
        sa.column("row_hash", sa.String()),
    ),
    "audit_events": sa.table(
        "audit_events",
        sa.column("id", sa.Integer()), sa.column("time", _TIME), sa.column("actor", sa.String()),
        sa.column("action", sa.String()), sa.column("details", sa.JSON()), sa.column("row_hash", sa.String()),
    ),
}

SQLITE_TRIGGERS = {
    "slides_no_delete": "BEFORE DELETE ON slides "
    "BEGIN SELECT RAISE(ABORT, 'slides cannot be deleted: every received file stays on record'); END",
    "slides_status_forward": "BEFORE UPDATE OF status ON slides "
    "WHEN NEW.status IS NOT OLD.status AND OLD.status <> 'pending' "
    "BEGIN SELECT RAISE(ABORT, 'a scored or rejected slide keeps its status'); END",
    "slides_duplicate_once": "BEFORE UPDATE OF duplicate_of_id ON slides "
    "WHEN NEW.duplicate_of_id IS NOT OLD.duplicate_of_id "
    "AND (OLD.duplicate_of_id IS NOT NULL OR OLD.status <> 'pending') "
    "BEGIN SELECT RAISE(ABORT, 'duplicate_of_id is set once, on a pending slide'); END",
    "slides_archived_once": "BEFORE UPDATE OF archived_path ON slides "
    "WHEN NEW.archived_path IS NOT OLD.archived_path AND OLD.archived_path IS NOT NULL "
    "BEGIN SELECT RAISE(ABORT, 'archived_path is set once'); END",
    "slides_identity_fixed": "BEFORE UPDATE OF id, path, file_name, sha256, size_bytes, first_seen, source_folder "
    "ON slides WHEN NEW.id IS NOT OLD.id OR NEW.path IS NOT OLD.path OR NEW.file_name IS NOT OLD.file_name "
    "OR NEW.sha256 IS NOT OLD.sha256 OR NEW.size_bytes IS NOT OLD.size_bytes "
    "OR NEW.first_seen IS NOT OLD.first_seen OR NEW.source_folder IS NOT OLD.source_folder "
    "BEGIN SELECT RAISE(ABORT, 'what identifies a slide never changes'); END",
    "scores_slide_scoreable": "BEFORE INSERT ON scores WHEN EXISTS (SELECT 1 FROM slides "
    "WHERE id = NEW.slide_id AND (duplicate_of_id IS NOT NULL OR status = 'rejected')) "
    "BEGIN SELECT RAISE(ABORT, 'a duplicate or rejected slide is not scored'); END",
    **{
        f"{table}_hash_required": f"BEFORE INSERT ON {table} WHEN NEW.row_hash IS NULL "
        f"BEGIN SELECT RAISE(ABORT, '{table} rows are added by GANAD Clinic only: this one has no row hash'); END"
        for table in CHAINED_TABLES
    },
}

PG_FUNCTIONS = {
    "ganad_require_row_hash": """
BEGIN
  IF NEW.row_hash IS NULL THEN
    RAISE EXCEPTION '% rows are added by GANAD Clinic only: row % has no row hash', TG_TABLE_NAME, NEW.id;
  END IF;
  RETURN NEW;
END""",
    "ganad_guard_slide": """
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'slides cannot be deleted: slide % stays on record', OLD.id;
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND OLD.status <> 'pending' THEN
    RAISE EXCEPTION 'slide % is % and keeps that status (not %)', OLD.id, OLD.status, NEW.status;
  END IF;
  IF NEW.duplicate_of_id IS DISTINCT FROM OLD.duplicate_of_id
     AND (OLD.duplicate_of_id IS NOT NULL OR OLD.status <> 'pending') THEN
    RAISE EXCEPTION 'slide %: duplicate_of_id is set once, on a pending slide', OLD.id;
  END IF;
  IF NEW.archived_path IS DISTINCT FROM OLD.archived_path AND OLD.archived_path IS NOT NULL THEN
    RAISE EXCEPTION 'slide %: archived_path is set once', OLD.id;
  END IF;
  IF (NEW.id, NEW.path, NEW.file_name, NEW.sha256, NEW.size_bytes, NEW.first_seen, NEW.source_folder)
     IS DISTINCT FROM
     (OLD.id, OLD.path, OLD.file_name, OLD.sha256, OLD.size_bytes, OLD.first_seen, OLD.source_folder) THEN
    RAISE EXCEPTION 'slide %: what identifies a slide never changes', OLD.id;
  END IF;
  RETURN NEW;
END""",
    # FOR SHARE: waits for a station changing the slide right now, then checks what it committed.
    "ganad_guard_score": """
DECLARE
  target RECORD;
BEGIN
  SELECT status, duplicate_of_id INTO target FROM slides WHERE id = NEW.slide_id FOR SHARE;
  IF target.duplicate_of_id IS NOT NULL OR target.status = 'rejected' THEN
    RAISE EXCEPTION 'slide % is a duplicate or rejected: it is not scored', NEW.slide_id;
  END IF;
  RETURN NEW;
END""",
}

PG_TRIGGERS = {  # name: (table, when, what)
    "slides_guard": ("slides", "BEFORE UPDATE OR DELETE", "FOR EACH ROW EXECUTE FUNCTION ganad_guard_slide()"),
    "slides_no_truncate": ("slides", "BEFORE TRUNCATE", "FOR EACH STATEMENT EXECUTE FUNCTION ganad_refuse_change()"),
    "scores_slide_scoreable": ("scores", "BEFORE INSERT", "FOR EACH ROW EXECUTE FUNCTION ganad_guard_score()"),
    **{
        f"{table}_hash_required": (table, "BEFORE INSERT", "FOR EACH ROW EXECUTE FUNCTION ganad_require_row_hash()")
        for table in CHAINED_TABLES
    },
}


def upgrade() -> None:
    op.add_column("scores", sa.Column("warning", sa.Text(), nullable=True))
    for table in CHAINED_TABLES:
        op.add_column(table, sa.Column("row_hash", sa.String(length=64), nullable=True))
    dialect = op.get_bind().dialect.name
    for table in CHAINED_TABLES:
        _lift_append_only(table, dialect)
        _hash_existing_rows(CHAINED_TABLES[table])
        _restore_append_only(table, dialect)
    if dialect == "sqlite":
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    elif dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$")
        for name, (table, when, what) in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} ON {table} {what}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    elif dialect == "postgresql":
        for name, (table, _, _) in PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {name}()")
    # plain ALTER TABLE (SQLite 3.35+, PostgreSQL): a batch copy of a table would drop its triggers
    for table in CHAINED_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN row_hash")
    op.execute("ALTER TABLE scores DROP COLUMN warning")


def _lift_append_only(table: str, dialect: str) -> None:
    """Let this migration write the hashes of existing rows (the 0001 triggers refuse UPDATE)."""
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER {table}_no_update")
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")


def _restore_append_only(table: str, dialect: str) -> None:
    """Put back exactly what revision 0001 made."""
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE is not allowed'); END"
        )
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def _hash_existing_rows(table: sa.TableClause) -> None:
    connection = op.get_bind()
    columns = [column for column in table.columns if column.name != "row_hash"]
    set_hash = (
        sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(row_hash=sa.bindparam("new_hash"))
    )
    previous: str | None = None
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(*columns).where(table.c.id > last_id).order_by(table.c.id).limit(BATCH)
        ).mappings().all()
        if not rows:
            return
        updates = []
        for row in rows:
            previous = _row_hash(table.name, previous, row)
            updates.append({"row_id": row["id"], "new_hash": previous})
        connection.execute(set_hash, updates)
        last_id = rows[-1]["id"]


def _row_hash(table_name: str, previous_hash: str | None, values: Any) -> str:
    payload = {
        "format": CHAIN_FORMAT,
        "table": table_name,
        "previous": previous_hash,
        "row": {name: _canonical(value) for name, value in values.items() if value is not None},
    }
    serialised = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(serialised.encode("ascii")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite keeps UTC
        return {"time": aware.astimezone(UTC).isoformat(timespec="microseconds")}
    if isinstance(value, (dict, list)):
        return {"json": json.loads(json.dumps(value))}
    raise TypeError(f"cannot hash a {type(value).__name__} value: {value!r}")
