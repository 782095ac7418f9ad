"""Submissions' tables: what officials submitted, with the receipt that proves it."""

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # experience_report | initiative
    sa.Column("author_id", sa.String(100), nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=False),  # the unit as it was at receipt
    sa.Column("receipt_number", sa.String(40), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # submitted | withdrawn | rejected
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    sa.Column("body", sa.JSON, nullable=False),
    sa.UniqueConstraint("tenant", "edition", "receipt_number", name="uq_receipt_number"),
    # One experience report per person per edition part (an initiative's rule is one per unit: its issue).
    sa.UniqueConstraint("tenant", "edition", "part", "author_id", name="uq_submission_author"),
)
