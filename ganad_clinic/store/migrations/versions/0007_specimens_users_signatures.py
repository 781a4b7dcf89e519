"""Specimens, named users and signatures.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

`specimens` holds one row per accession; `slides.specimen_id` says which specimen an image is of,
set once (a trigger refuses a change, so a signed specimen's images stay its own). The slides
received before this revision are given specimens by the default rule (screening.specimens): a
file in a subfolder of its watched folder belongs to the subfolder's specimen, a file directly in
it is a specimen of its own, named after the file. `users` are the named accounts (argon2 hashes,
roles, disabled, failed sign-ins). `signatures` are append-only and chained like scores and
reviews: a sign-off, with what it covered.
"""

from __future__ import annotations

from pathlib import PurePath

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACCESSION_LENGTH = 64

SQLITE_TRIGGERS = {
    "slides_specimen_once": "BEFORE UPDATE OF specimen_id ON slides "
    "WHEN NEW.specimen_id IS NOT OLD.specimen_id AND OLD.specimen_id IS NOT NULL "
    "BEGIN SELECT RAISE(ABORT, 'a slide''s specimen is set once'); END",
    "signatures_no_update": "BEFORE UPDATE ON signatures "
    "BEGIN SELECT RAISE(ABORT, 'signatures is append-only: UPDATE is not allowed'); END",
    "signatures_no_delete": "BEFORE DELETE ON signatures "
    "BEGIN SELECT RAISE(ABORT, 'signatures is append-only: DELETE is not allowed'); END",
    "signatures_hash_required": "BEFORE INSERT ON signatures WHEN NEW.row_hash IS NULL "
    "BEGIN SELECT RAISE(ABORT, 'signatures rows are added by GANAD Clinic only: this one has no row hash'); END",
}
PG_FUNCTION = """
BEGIN
  IF NEW.specimen_id IS DISTINCT FROM OLD.specimen_id AND OLD.specimen_id IS NOT NULL THEN
    RAISE EXCEPTION 'slide %: its specimen is set once', OLD.id;
  END IF;
  RETURN NEW;
END"""
PG_TRIGGERS = {  # name: (table, when, what); the functions are 0001's and 0003's and the one above
    "slides_specimen_once": ("slides", "BEFORE UPDATE", "FOR EACH ROW EXECUTE FUNCTION ganad_guard_slide_specimen()"),
    "signatures_append_only": ("signatures", "BEFORE UPDATE OR DELETE OR TRUNCATE",
                               "FOR EACH STATEMENT EXECUTE FUNCTION ganad_refuse_change()"),
    "signatures_hash_required": ("signatures", "BEFORE INSERT",
                                 "FOR EACH ROW EXECUTE FUNCTION ganad_require_row_hash()"),
}


def default_accession(path: str, source_folder: str) -> str:
    """The default rule, as screening.specimens has it (copied: a revision never changes)."""
    try:
        parts = PurePath(path).relative_to(source_folder).parts
    except ValueError:
        parts = (PurePath(path).name,)
    name = parts[0] if len(parts) > 1 else PurePath(parts[-1]).stem
    return name[:ACCESSION_LENGTH]


def upgrade() -> None:
    op.create_table(
        "specimens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("accession", sa.String(length=ACCESSION_LENGTH), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specimens")),
        sa.UniqueConstraint("accession", name=op.f("uq_specimens_accession")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.Enum("technician", "supervisor", "admin", name="user_role", native_enum=False,
                                  create_constraint=True, length=32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("specimen_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("printed_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("meaning", sa.Text(), nullable=False),
        sa.Column("finding", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("target_fpr", sa.Float(), nullable=True),
        sa.Column("reviews_up_to", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["specimen_id"], ["specimens.id"], name=op.f("fk_signatures_specimen_id_specimens")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signatures_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
        sa.UniqueConstraint("message_id", name=op.f("uq_signatures_message_id")),
    )
    op.create_index("ix_signatures_specimen_id_id", "signatures", ["specimen_id", "id"])
    dialect = op.get_bind().dialect.name
    # plain ALTER TABLE: a batch copy of slides would drop its triggers (SQLite takes the reference inline)
    if dialect == "sqlite":
        op.execute("ALTER TABLE slides ADD COLUMN specimen_id INTEGER REFERENCES specimens (id)")
    else:
        op.add_column("slides", sa.Column("specimen_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_slides_specimen_id_specimens"), "slides", "specimens", ["specimen_id"], ["id"])
    op.create_index(op.f("ix_slides_specimen_id"), "slides", ["specimen_id"])
    _give_existing_slides_specimens()
    if dialect == "sqlite":
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    elif dialect == "postgresql":
        op.execute("CREATE FUNCTION ganad_guard_slide_specimen() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $${PG_FUNCTION}\n$$")
        for name, (table, when, what) in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} ON {table} {what}")


def _give_existing_slides_specimens() -> None:
    connection = op.get_bind()
    slides = sa.table("slides", sa.column("id"), sa.column("path"), sa.column("source_folder"),
                      sa.column("first_seen"), sa.column("specimen_id"))
    specimens = sa.table("specimens", sa.column("id"), sa.column("accession"), sa.column("first_seen"))
    ids: dict[str, int] = {}
    for slide_id, path, folder, first_seen in connection.execute(
            sa.select(slides.c.id, slides.c.path, slides.c.source_folder, slides.c.first_seen).order_by(slides.c.id)):
        accession = default_accession(path, folder)
        if accession not in ids:
            connection.execute(sa.insert(specimens).values(accession=accession, first_seen=first_seen))
            made = sa.select(specimens.c.id).where(specimens.c.accession == accession)
            ids[accession] = connection.execute(made).scalar_one()
        connection.execute(sa.update(slides).where(slides.c.id == slide_id).values(specimen_id=ids[accession]))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    elif dialect == "postgresql":
        for name, (table, _, _) in PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION ganad_guard_slide_specimen()")
    op.drop_index(op.f("ix_slides_specimen_id"), table_name="slides")
    if dialect == "postgresql":
        op.execute("ALTER TABLE slides DROP CONSTRAINT fk_slides_specimen_id_specimens")
    op.execute("ALTER TABLE slides DROP COLUMN specimen_id")
    op.drop_index("ix_signatures_specimen_id_id", table_name="signatures")
    for table in ("signatures", "users", "specimens"):
        op.drop_table(table)
