"""rewards' tables: the backbone, its copy of the directory and editions, and the participation ledger."""

from __future__ import annotations

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)

# One row per submission the consumer has seen: the folded state, and the row every handler of that
# submission upserts first, so two processes folding the same submission at once take turns (on PostgreSQL
# the upsert holds the row lock; the second fold then sees the first one's facts).
submission_states = sa.Table(
    "submission_states",
    metadata,
    sa.Column("submission_id", sa.String(100), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),  # pending | active | withdrawn | rejected
    sa.Column("facts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The participation ledger (sổ ghi nhận tham gia): a projection of the kept facts, rebuilt from them. An entry
# exists while the fact that earned it stands (a withdrawal or a rejection removes it; a reinstatement
# restores it). One achievement is one entry: revisions of a submission never add one.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("submission_id", sa.String(100), primary_key=True),
    sa.Column("participant_kind", sa.String(10), primary_key=True),  # person | unit
    sa.Column("participant_id", sa.String(100), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # the submission kind: experience_report | initiative
    sa.Column("event_id", sa.String(36), nullable=False),  # the fact that earned it
    sa.Column("rule", sa.String(200), nullable=False),  # e.g. submission.received/experience
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False),  # business time of the fact
    sa.Column("reason_vi", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_ledger_edition", "tenant", "edition", "participant_kind", "time"),
)
