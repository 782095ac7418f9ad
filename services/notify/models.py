"""notify's tables: the backbone, its copy of the directory and editions, in-app messages and the delivery log."""

from __future__ import annotations

import sqlalchemy as sa

from shared.copies import copy_tables
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)

# In-app messages (hộp thư trong ứng dụng): written in the handler's transaction, one per cause and person.
inapp = sa.Table(
    "inapp",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # uuid5(cause event id, person, channel)
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("person_id", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False, server_default="in_app"),
    sa.Column("template", sa.String(100), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("cause_event_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("read_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("cause_event_id", "person_id", "channel", name="uq_inapp_cause"),
    sa.Index("ix_inapp_person", "tenant", "person_id", "created_at"),
)

# The delivery log, outbox-like: a row is written in the handler's transaction; the delivery loop hands it to
# SMTP outside any transaction and then marks it. A row marked sent is never sent again; a row being sent is
# leased (``lease_until``) so another process leaves it alone.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # uuid5(cause event id, recipient, channel)
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=True),
    sa.Column("channel", sa.String(20), nullable=False),  # email
    sa.Column("template", sa.String(100), nullable=False),
    sa.Column("recipient", sa.String(100), nullable=False),  # person id
    sa.Column("to_address", sa.String(300), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=True),
    sa.Column("cause_event_id", sa.String(36), nullable=False),
    sa.Column("correlation_id", sa.String(100), nullable=True),  # the cause's, carried to notification.*
    sa.Column("status", sa.String(10), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_tenant", "tenant", "created_at"),
)
