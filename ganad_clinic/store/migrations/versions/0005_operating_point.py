"""The operating point: every score says the false-positive rate it was flagged at and its
conformal p-value; every cell its p-value.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`scores.p_value` is the slide's conformal p-value (Bonferroni over its cells), `target_fpr` the
slide false-positive rate in force when it was scored, `kept_fpr` the rate its model's calibration
could keep for its number of cells (above the target when the calibration is too small), and
`calibration_n` the number of calibration normals behind the p-values. `cells.p_value` is each
cell's own. `model_versions.acceptance_report` is the path of the PDF of the model's latest
acceptance check (screening.acceptance), linked from its registry entry. Nullable: scores written
before this revision have none (their threshold was chosen otherwise) and keep their chained
hashes, which leave NULL columns out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCORE_COLUMNS = (
    sa.Column("p_value", sa.Float(), nullable=True),
    sa.Column("target_fpr", sa.Float(), nullable=True),
    sa.Column("kept_fpr", sa.Float(), nullable=True),
    sa.Column("calibration_n", sa.Integer(), nullable=True),
)


def upgrade() -> None:
    for column in SCORE_COLUMNS:
        op.add_column("scores", column)
    op.add_column("cells", sa.Column("p_value", sa.Float(), nullable=True))
    op.add_column("model_versions", sa.Column("acceptance_report", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE model_versions DROP COLUMN acceptance_report")
    # plain ALTER TABLE (SQLite 3.35+, PostgreSQL): a batch copy of the table would drop its append-only triggers
    op.execute("ALTER TABLE cells DROP COLUMN p_value")
    for column in reversed(SCORE_COLUMNS):
        op.execute(f"ALTER TABLE scores DROP COLUMN {column.name}")
