"""Stations and work claims: several screening services on one database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

`stations` holds one row per named screening station (`ganad watch --station`, default the host
name): where it runs and its last heartbeat. A station scores a slide only once it has claimed it:
`slides.claimed_by` names the station and `slides.lease_until` when its claim lapses unless it is
renewed (the heartbeat renews it); another station takes over a lapsed claim. The claim is cleared
when the slide's result commits. `scores.station` says which station made each score (nullable:
the scores before this revision keep their chained hashes, which leave NULL columns out).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATION_LENGTH = 64


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=STATION_LENGTH), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("name", name=op.f("uq_stations_name")),
    )
    # plain ALTER TABLE: a batch copy of slides or scores would drop their triggers
    op.add_column("slides", sa.Column("claimed_by", sa.String(length=STATION_LENGTH), nullable=True))
    op.add_column("slides", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_slides_claimed_by"), "slides", ["claimed_by"])
    op.add_column("scores", sa.Column("station", sa.String(length=STATION_LENGTH), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE scores DROP COLUMN station")
    op.drop_index(op.f("ix_slides_claimed_by"), table_name="slides")
    op.execute("ALTER TABLE slides DROP COLUMN lease_until")
    op.execute("ALTER TABLE slides DROP COLUMN claimed_by")
    op.drop_table("stations")
