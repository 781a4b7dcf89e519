"""Review withdrawals: a review undone is withdrawn by a row of its own, never changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`reviews.withdraws_id` is set on a withdrawal: the id of the review it withdraws (at most one
withdrawal per review, hence unique). The slide's current review is then its latest review that is
neither a withdrawal nor withdrawn. Nullable: the reviews before this revision withdraw nothing and
keep their chained hashes, which leave NULL columns out. The store checks that the withdrawn review
is the slide's current one (no foreign key: SQLite cannot add one to an existing table without
copying it, and a copy would drop its append-only triggers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("withdraws_id", sa.Integer(), nullable=True))
    op.create_index("ix_reviews_withdraws_id", "reviews", ["withdraws_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_reviews_withdraws_id", table_name="reviews")
    # plain ALTER TABLE (SQLite 3.35+, PostgreSQL): a batch copy of the table would drop its append-only triggers
    op.execute("ALTER TABLE reviews DROP COLUMN withdraws_id")
