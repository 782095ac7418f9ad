"""assignments keep their standing: assignments.standing and standing_since (indexed with what participation
counts), cleared by triggers on every write of an assignment's facts, filled for the assignments already there

Issue 16. Participation decided every assignment's standing from its facts on each read (three correlated
subqueries per assignment: 65–150 ms of SQL at 20,000 assignments, most of a read). Each assignment now keeps
its standing after its every fact and the business time of its latest fact; a read takes the kept standing
wherever that time has passed and decides only the rest (``usecases.participation``). Campaign's code keeps
the two columns in the transaction of each fact (``restand``). During a rolling update the previous release
writes facts too and knows nothing of them: the triggers clear the kept standing of an assignment whose facts
any code writes, and this release's code, which writes the standing after its facts, sets it again; an
assignment cleared by the previous release is decided from its facts until its next fact.

Revision ID: d4f6a8c0e2b3
Revises: f3b5d7e9a1c2
Create Date: 2026-12-05 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4f6a8c0e2b3"
down_revision: str | None = "f3b5d7e9a1c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = ("assignment_changes", "misses", "extensions")
INDEXED = [
    "tenant",
    "edition",
    "part",
    "unit_id",
    "standing",
    "standing_since",
    "created_at",
    "assignee_id",
    "id",
]
CLEAR = "UPDATE assignments SET standing = NULL WHERE id = {row}.assignment_id"

# The standing after every fact, as ``usecases.participation._decided(None)`` decides it at this revision.
STANDING = (
    "CASE (SELECT CASE WHEN c.status <> 'fulfilled' THEN 0 WHEN c.on_time = {true} THEN 1 ELSE 2 END"
    " FROM assignment_changes c WHERE c.assignment_id = assignments.id ORDER BY c.at DESC, c.recorded DESC LIMIT 1)"
    " WHEN 1 THEN 'fulfilled' WHEN 2 THEN 'fulfilled_late' ELSE CASE"
    " WHEN EXISTS (SELECT 1 FROM misses m WHERE m.assignment_id = assignments.id) THEN 'missed'"
    " WHEN EXISTS (SELECT 1 FROM extensions x WHERE x.assignment_id = assignments.id) THEN 'extended'"
    " ELSE 'open' END END"
)
LATEST = (
    "(SELECT max(c.at) FROM assignment_changes c WHERE c.assignment_id = assignments.id)",
    "(SELECT max(m.deadline) FROM misses m WHERE m.assignment_id = assignments.id)",
    "(SELECT max(x.granted_at) FROM extensions x WHERE x.assignment_id = assignments.id)",
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.add_column("assignments", sa.Column("standing", sa.String(20), nullable=True))
    op.add_column("assignments", sa.Column("standing_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_assignments_standing", "assignments", INDEXED)
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION campaign_standing_clear() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n  IF TG_OP <> 'INSERT' THEN "
            f"{CLEAR.format(row='OLD')}; END IF;\n"
            f"  IF TG_OP <> 'DELETE' THEN {CLEAR.format(row='NEW')}; END IF;\n  RETURN NULL;\nEND $$"
        )
        for table in FACTS:
            op.execute(
                f"CREATE TRIGGER {table}_standing AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION campaign_standing_clear()"
            )
        since = f"greatest(created_at, {', '.join(LATEST)})"
        true = "true"
    else:
        for table in FACTS:
            for event, rows in (("insert", ("NEW",)), ("update", ("OLD", "NEW")), ("delete", ("OLD",))):
                body = " ".join(f"{CLEAR.format(row=row)};" for row in rows)
                op.execute(
                    f"CREATE TRIGGER {table}_standing_{event} AFTER {event.upper()} ON {table} "
                    f"FOR EACH ROW BEGIN {body} END"
                )
        since = f"max(created_at, {', '.join(f'coalesce({x}, created_at)' for x in LATEST)})"
        true = "1"
    op.execute(f"UPDATE assignments SET standing = {STANDING.format(true=true)}, standing_since = {since}")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for table in FACTS:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_standing ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_standing_{event}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS campaign_standing_clear()")
    op.drop_index("ix_assignments_standing", table_name="assignments")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("standing_since")
        batch.drop_column("standing")
