"""Campaign's tables. The directory is kept in the shared directory-copy tables: campaign is their source, and
applies its own ``directory.*`` events to them exactly as other services apply theirs."""

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("part_kind", sa.String(40), nullable=False),
    sa.Column("assignee_kind", sa.String(20), nullable=False),
    sa.Column("assignee_id", sa.String(100), nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=True),
    sa.Column("deadline", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),  # open | fulfilled
    sa.Column("fulfilled_at", UtcDateTime(), nullable=True),
    sa.Column("on_time", sa.Boolean, nullable=True),
    sa.Column("submission_id", sa.String(36), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant", "edition", "part", "assignee_id", name="uq_assignment_assignee"),
)
