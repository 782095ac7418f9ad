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
    sa.Column("receipt_number", sa.String(40), nullable=True),  # None while an initiative is a draft
    sa.Column("received_at", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # draft | submitted | withdrawn | rejected
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    sa.Column("body", sa.JSON, nullable=False),
    sa.UniqueConstraint("tenant", "edition", "receipt_number", name="uq_receipt_number"),
)

# One experience report per person per edition part (a withdrawn one leaves room for a new one).
sa.Index(
    "uq_report_author",
    submissions.c.tenant,
    submissions.c.edition,
    submissions.c.part,
    submissions.c.author_id,
    unique=True,
    sqlite_where=sa.and_(submissions.c.kind == "experience_report", submissions.c.status != "withdrawn"),
    postgresql_where=sa.and_(submissions.c.kind == "experience_report", submissions.c.status != "withdrawn"),
)

# A batch's reports in force of its callers (``usecases/receipts.py``), whatever their part: without it that
# read scans every report of the edition (``uq_report_author`` leads with the part).
sa.Index(
    "ix_reports_in_force",
    submissions.c.tenant,
    submissions.c.edition,
    submissions.c.author_id,
    sqlite_where=sa.and_(submissions.c.kind == "experience_report", submissions.c.status != "withdrawn"),
    postgresql_where=sa.and_(submissions.c.kind == "experience_report", submissions.c.status != "withdrawn"),
)

# Extensions of one assignee's deadline (deadline.extended), applied from the inbox: the latest fact by
# ``sequence`` of its assignment wins, so a redelivered older extension never shortens a newer one.
extensions = sa.Table(
    "extensions",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("assignee_id", sa.String(100), primary_key=True),
    sa.Column("assignment_id", sa.String(100), nullable=False),
    sa.Column("deadline", UtcDateTime(), nullable=False),  # exclusive end of the extended deadline
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("approved_by", sa.String(100), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
)

# One row per intake.closed emitted: (part, deadline, assignee or '') — the job's memory and an audit trail.
intake_closures = sa.Table(
    "intake_closures",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("deadline", UtcDateTime(), primary_key=True),
    sa.Column("assignee_id", sa.String(100), primary_key=True),  # '' for the part's own deadline
    sa.Column("accepted_on_time", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=False),
)

# The procedures known per unit (procedure.catalogue.changed): national codes, replaced by a newer list.
procedure_catalogues = sa.Table(
    "procedure_catalogues",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("unit_id", sa.String(100), primary_key=True),
    sa.Column("codes", sa.JSON, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

# Files of initiatives: the bytes live in the NATS JetStream object store under their SHA-256; a row here
# is committed only after the object is stored (reliability rule 5).
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("submission_id", sa.String(36), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("file_type", sa.String(10), nullable=False),  # pdf | docx | xlsx | png | jpeg (from the bytes)
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("uploaded_by", sa.String(100), nullable=False),
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
)

# One row per object an upload is writing or has written: ``pending_since`` (wall clock) protects an object
# whose row is about to commit from the collector; cleared when the referencing row commits.
stored_objects = sa.Table(
    "stored_objects",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("pending_since", UtcDateTime(), nullable=True),
    sa.Column("stored_at", UtcDateTime(), nullable=False),
)

# The secretariat's eligibility rulings, in order (submission.rejected / submission.reinstated).
rulings = sa.Table(
    "rulings",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("submission_id", sa.String(36), nullable=False, index=True),
    sa.Column("ruling", sa.String(20), nullable=False),  # rejected | reinstated
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("ruled_by", sa.String(100), nullable=False),
    sa.Column("ruled_at", UtcDateTime(), nullable=False),
)

# Council review: declared conflicts, the chair's reassignments, and one score sheet per member per initiative.
conflicts = sa.Table(
    "review_conflicts",
    metadata,
    sa.Column("submission_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(100), primary_key=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("declared_at", UtcDateTime(), nullable=False),
)

reassignments = sa.Table(
    "review_reassignments",
    metadata,
    sa.Column("submission_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(100), primary_key=True),
    sa.Column("action", sa.String(10), nullable=False),  # add | remove
    sa.Column("by", sa.String(100), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

score_sheets = sa.Table(
    "score_sheets",
    metadata,
    sa.Column("submission_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(100), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),  # criterion id -> points (as a decimal string)
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("scored_at", UtcDateTime(), nullable=False),
)

# The council's selection outcome per initiative (selected | not_selected), with decision notes.
selections = sa.Table(
    "selections",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("submission_id", sa.String(36), primary_key=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("decided_at", UtcDateTime(), nullable=False),
)

# One initiative per unit per edition part (a draft counts: revise it; a withdrawn one leaves room).
sa.Index(
    "uq_initiative_unit",
    submissions.c.tenant,
    submissions.c.edition,
    submissions.c.part,
    submissions.c.unit_id,
    unique=True,
    sqlite_where=sa.and_(submissions.c.kind == "initiative", submissions.c.status != "withdrawn"),
    postgresql_where=sa.and_(submissions.c.kind == "initiative", submissions.c.status != "withdrawn"),
)
