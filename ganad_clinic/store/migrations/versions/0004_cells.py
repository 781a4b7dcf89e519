"""Cells: every tile of a scored slide is a result of its own; and what decided the tiles is
stored with each score.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`cells` holds, for each score written from now on, one row per tile (a white cell, a grid tile, or
the whole of a crop): its box in slide pixels, how it was found, its score, terms and flag. It is
append-only like the scores (triggers refuse UPDATE and DELETE); each score's row carries the
digest of its cells (`cells_sha256`, in the score's chained hash), so a cell changed behind the
triggers' back is found by `ganad db verify`. Scores get the tiling rule, the crops' field of view,
the field pixel scale and the grid overlap they were made with, so a recompute uses exactly those.
Scores written before this revision keep NULL there: their tiles are not known.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCORE_COLUMNS = (
    sa.Column("tiling_rule", sa.String(length=16), nullable=True),
    sa.Column("crop_size", sa.Integer(), nullable=True),
    sa.Column("field_scale", sa.Float(), nullable=True),
    sa.Column("tile_overlap", sa.Float(), nullable=True),
    sa.Column("cells_sha256", sa.String(length=64), nullable=True),
)


def upgrade() -> None:
    for column in SCORE_COLUMNS:
        op.add_column("scores", column)
    op.create_table(
        "cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("score_id", sa.Integer(), nullable=False),
        sa.Column("cell_index", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("found_by", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("l_d", sa.Float(), nullable=False),
        sa.Column("l_r", sa.Float(), nullable=False),
        sa.Column("l_l", sa.Float(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["score_id"], ["scores.id"], name="fk_cells_score_id_scores"),
        sa.PrimaryKeyConstraint("id", name="pk_cells"),
        sa.UniqueConstraint("score_id", "cell_index", name="uq_cells_score_id_cell_index"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER cells_no_{operation.lower()} BEFORE {operation} ON cells "
                f"BEGIN SELECT RAISE(ABORT, 'cells is append-only: {operation} is not allowed'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER cells_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON cells "
            "FOR EACH STATEMENT EXECUTE FUNCTION ganad_refuse_change()"
        )


def downgrade() -> None:
    op.drop_table("cells")  # its triggers go with it
    # plain ALTER TABLE (SQLite 3.35+, PostgreSQL): a batch copy of the table would drop its append-only triggers
    for column in reversed(SCORE_COLUMNS):
        op.execute(f"ALTER TABLE scores DROP COLUMN {column.name}")
