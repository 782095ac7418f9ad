"""notify's tables: the backbone, its copy of the directory and editions, in-app messages and the delivery log."""

from __future__ import annotations

import sqlalchemy as sa

from shared.copies import copy_tables, directory_versions_table, previous_release_unions
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata)
previous_unions = previous_release_unions(metadata, "notify_unions", sequence=True)

# The version of notify's copy of the directory, per tenant (``shared.copies.directory_versions_table``): what
# the directory parsed in memory (usecases/queue.py) is checked against on every event.
directory_versions = directory_versions_table(metadata, "notify_directory_versions")

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
    sa.Index("ix_deliveries_tenant", "tenant", "created_at"),
)

# What keeps an edition from being pruned (``hoithi retention archive``): deliveries not yet settled.
RETENTION_OPEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "deliveries": ("status", ("pending", "held", "paused"))
}

# Delivery columns added by revision "notify deepening" (kept here in one place for the code):
#   kind: what the row is (an event's message, a timed list, a digest, a webhook POST)
#   due_at: business instant before which the row is not sent (quiet hours); None = at once
#   digest_on / digest_id: a non-urgent email held for the person's 07:30 digest of that date, then folded in
deliveries.append_column(sa.Column("due_at", UtcDateTime(), nullable=True))
deliveries.append_column(sa.Column("digest_on", sa.Date, nullable=True))
deliveries.append_column(sa.Column("digest_id", sa.String(36), nullable=True))
deliveries.append_column(sa.Column("headers", sa.Text, nullable=True))  # webhook: JSON of extra headers
# The row's lane (``domain.lane``: 0 a receipt, 1 everything else; a row the previous release wrote: 1): due rows
# are sent lane by lane, each in the order it fell due — the index is that order.
deliveries.append_column(sa.Column("lane", sa.SmallInteger, nullable=False, server_default="1"))
sa.Index("ix_deliveries_lane", deliveries.c.status, deliveries.c.lane, deliveries.c.next_attempt_at)
sa.Index("ix_deliveries_recipient", deliveries.c.tenant, deliveries.c.recipient, deliveries.c.created_at)
sa.Index("ix_deliveries_cause", deliveries.c.cause_event_id)
sa.Index("ix_deliveries_held", deliveries.c.status, deliveries.c.digest_on)

# Open assignments (for the daily "not yet submitted" lists), folded from assignment.* by sequence.
assignments = sa.Table(
    "notify_assignments",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("assignment_id", sa.String(200), primary_key=True),
    sa.Column("edition", sa.String(32), nullable=True),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("assignee_kind", sa.String(20), nullable=False),
    sa.Column("assignee_id", sa.String(100), nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=True),
    sa.Column("deadline", UtcDateTime(), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Index("ix_notify_assignments_part", "tenant", "edition", "part", "open"),
)

# Per-person preferences: immediate or daily digest for non-urgent kinds; quiet hours; language.
preferences = sa.Table(
    "notify_preferences",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("person_id", sa.String(100), primary_key=True),
    sa.Column("mode", sa.String(10), nullable=False, server_default="immediate"),
    sa.Column("quiet_from", sa.String(5), nullable=True),  # HH:MM, Vietnam time
    sa.Column("quiet_to", sa.String(5), nullable=True),
    sa.Column("language", sa.String(2), nullable=False, server_default="vi"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Webhook subscriptions per tenant: POST of each matching CloudEvent, signed with the shared secret.
webhooks = sa.Table(
    "notify_webhooks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("url", sa.String(1000), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("event_types", sa.Text, nullable=False, server_default="[]"),  # JSON list; [] = all
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=True),
    sa.Index("ix_notify_webhooks_tenant", "tenant"),
)

# Timed runs: one row per (kind, scope, date) a replica has done, so two replicas never do it twice.
timed_runs = sa.Table(
    "notify_timed_runs",
    metadata,
    sa.Column("key", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=False),
)

# Send intents: before an email is handed to SMTP, the delivery loop records here which message it is about to
# send and under which ``Message-ID`` (stable: derived from the tenant and the delivery id); the mark after the
# SMTP server accepted settles it in the same transaction as the delivery's ``sent``. An intent still unsettled
# when a sender takes over the delivery lease is a hand-over whose outcome nobody recorded: it is sent again at
# once, with the same Message-ID, so a receiver that deduplicates by Message-ID shows it once.
send_intents = sa.Table(
    "notify_send_intents",
    metadata,
    sa.Column("delivery_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("message_id", sa.String(300), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),  # the delivery's attempt this intent is for
    sa.Column("generation", sa.Integer, nullable=True),  # the delivery lease's generation of the sender
    sa.Column("recorded_at", UtcDateTime(), nullable=False),  # real time
    sa.Column("settled_at", UtcDateTime(), nullable=True),  # the outcome (sent or failed) recorded
    sa.Index("ix_notify_send_intents_open", "settled_at"),
)

# Reminders asked for (``POST …/editions/{edition}/reminders``): one row per (person, part, Vietnamese date) —
# the claim that makes it at most one a day, and the audit record of who asked and when.
reminders = sa.Table(
    "notify_reminders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # uuid5(tenant, edition, part, person, day)
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("person_id", sa.String(100), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("requested_by", sa.String(100), nullable=False),
    sa.Column("requested_at", UtcDateTime(), nullable=False),
    sa.Index("ix_notify_reminders_person", "tenant", "person_id", "day"),
)
