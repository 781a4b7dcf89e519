"""Scores say how the slide was tiled ("6 tiles, one per white cell", "grid of 300 tiles: no white
cell found"), so a technician can tell a field scored cell by cell from one that fell back to the grid.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A nullable column: scores written before it stay as they were (their tiling is unknown).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scores", sa.Column("tiling", sa.Text(), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE (SQLite 3.35+, PostgreSQL): a batch copy of the table would drop its append-only triggers
    op.execute("ALTER TABLE scores DROP COLUMN tiling")
