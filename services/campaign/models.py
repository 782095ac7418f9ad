"""Campaign's tables. The directory is kept in the shared directory-copy tables: campaign is their source, and
applies its own ``directory.*`` events to them exactly as other services apply theirs."""

import sqlalchemy as sa

from shared.copies import copy_tables, directory_versions_table, previous_release_unions
from shared.db import UtcDateTime, backbone_tables

metadata = sa.MetaData()
backbone = backbone_tables(metadata)
copies = copy_tables(metadata, listed=True)  # campaign serves the directory page by page
previous_unions = previous_release_unions(metadata, "directory_unions", sequence=False)
# The version of the directory, per tenant (``shared.copies.directory_versions_table``): a read that needs the
# whole directory parsed (participation) checks its parse against it instead of reading every row.
directory_versions = directory_versions_table(metadata, "campaign_directory_versions")

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
    # the deadline in force when an extension was granted (gia hạn); None: the part's deadline
    sa.Column("extended_to", UtcDateTime(), nullable=True),
    # The deadline clock's agenda (written by the clock only): the next instant a reminder of this assignment is
    # due (None: none left), and the deadline in force it was planned for (None: not planned yet).
    sa.Column("remind_at", UtcDateTime(), nullable=True),
    sa.Column("remind_for", UtcDateTime(), nullable=True),
    # Participation's read model (``usecases.participation.restand``): the standing after every fact of the
    # assignment (open | fulfilled | fulfilled_late | missed | extended) and the business time of its latest
    # fact, from which that standing holds. None: not kept (cleared by a write of the previous release).
    sa.Column("standing", sa.String(20), nullable=True),
    sa.Column("standing_since", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("tenant", "edition", "part", "assignee_id", name="uq_assignment_assignee"),
    # Participation's counts, from this index alone: per part, unit and kept standing in its order; an
    # assignment decided from its facts by its id (``usecases.participation``).
    sa.Index(
        "ix_assignments_standing",
        "tenant",
        "edition",
        "part",
        "unit_id",
        "standing",
        "standing_since",
        "created_at",
        "assignee_id",
        "id",
    ),
    sa.Index("ix_assignments_remind_at", "remind_at"),
    sa.Index("ix_assignments_remind_for", "remind_for"),
    sa.Index("ix_assignments_extended_to", "extended_to"),
)

# The edition version the clock planned each edition's reminders for: a new version (other offsets, another
# deadline) plans them again.
reminder_plans = sa.Table(
    "reminder_plans",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# Every change of an assignment's status, by business time (the fact that caused it): participation "as of"
# a moment folds these, so a report fulfilled on 20/10 and withdrawn on 24/10 counts as fulfilled as of 22/10.
assignment_changes = sa.Table(
    "assignment_changes",
    metadata,
    sa.Column("assignment_id", sa.String(36), primary_key=True),
    sa.Column("cause_id", sa.String(36), primary_key=True),  # the event that caused the change
    sa.Column("at", UtcDateTime(), nullable=False),  # business time of the change
    sa.Column("status", sa.String(20), nullable=False),  # fulfilled | open
    sa.Column("fulfilled_at", UtcDateTime(), nullable=True),
    sa.Column("on_time", sa.Boolean, nullable=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("recorded", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Index("ix_assignment_changes_tenant", "tenant"),
)

# The deadline clock's working state (gia hạn, nhận hồ sơ, quyết định quá hạn).
extensions = sa.Table(
    "extensions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("assignment_id", sa.String(36), nullable=False, index=True),
    sa.Column("previous_deadline", UtcDateTime(), nullable=False),
    sa.Column("new_deadline", UtcDateTime(), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("approved_by", sa.String(100), nullable=False),
    sa.Column("granted_at", UtcDateTime(), nullable=False),
)

# One row per submission received: what the clock counts against intake.closed's accepted_on_time.
receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("submission_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    # a selected initiative is a receipt of its own part and, for the council, of the selection part
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("assignee_id", sa.String(100), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    # every read of the table, with no choice left to the planner: one assignee's receipts of a part (settling
    # their assignment, at every receipt) and their deadline count as an exact range; a council's, and the
    # part's deadline count, as the part's range — each from the index alone
    sa.Index(
        "ix_receipts_part_assignee",
        "tenant",
        "edition",
        "part",
        "assignee_id",
        "received_at",
        "submission_id",
    ),
)

# intake.closed as received from submissions; assignee_id "" for the part's official deadline.
intake_closures = sa.Table(
    "intake_closures",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("deadline", UtcDateTime(), primary_key=True),
    sa.Column("assignee_id", sa.String(100), primary_key=True),
    sa.Column("accepted_on_time", sa.Integer, nullable=False),
    sa.Column("arrived_at", UtcDateTime(), nullable=False),
)

# One row per decision of the clock: the unique key makes each decision exactly once across replicas.
deadline_decisions = sa.Table(
    "deadline_decisions",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("edition", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(100), primary_key=True),
    sa.Column("deadline", UtcDateTime(), primary_key=True),
    sa.Column("assignee_id", sa.String(100), primary_key=True),
    sa.Column("assigned", sa.Integer, nullable=False),
    sa.Column("fulfilled", sa.Integer, nullable=False),
    sa.Column("missed", sa.Integer, nullable=False),
    sa.Column("decided_at", UtcDateTime(), nullable=False),
)

misses = sa.Table(
    "misses",
    metadata,
    sa.Column("assignment_id", sa.String(36), primary_key=True),
    sa.Column("deadline", UtcDateTime(), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("assignee_id", sa.String(100), nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Index("ix_misses_deadline", "tenant", "edition", "part", "deadline"),
)

# The 90-day campaign: each unit's procedure catalogue (a complete list from a date) and its progress reports.
procedure_catalogues = sa.Table(
    "procedure_catalogues",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("unit_id", sa.String(100), primary_key=True),
    sa.Column("at", UtcDateTime(), primary_key=True),
    sa.Column("procedures", sa.Text, nullable=False),  # JSON list of catalogue Procedure
    sa.Column("changed_by", sa.String(100), nullable=False),
    # a list dated before a newer one: it corrects the period up to that newer list (đính chính)
    sa.Column("correction", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("recorded_at", UtcDateTime(), nullable=True),
)

progress_reports = sa.Table(
    "progress_reports",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("part", sa.String(100), nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=False),
    sa.Column("period_start", UtcDateTime(), nullable=False),
    sa.Column("period_end", UtcDateTime(), nullable=False),
    sa.Column("dossiers", sa.Text, nullable=False),  # JSON list of {code, received, online, on_time}
    sa.Column("reported_by", sa.String(100), nullable=False),
    sa.Column("reported_at", UtcDateTime(), nullable=False),
    # a report for the same period replaces the earlier one
    sa.UniqueConstraint(
        "tenant", "edition", "part", "unit_id", "period_start", "period_end", name="uq_report_period"
    ),
)
