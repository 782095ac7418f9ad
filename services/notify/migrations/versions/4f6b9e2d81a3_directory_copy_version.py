"""directory copy version: notify_directory_versions, one row per tenant, changed by triggers in the same
transaction as every insert, update and delete of copy_people, copy_units and copy_unions

notify checks the directory it keeps parsed in memory against this row on every event (one primary-key read)
instead of scanning the copy. Triggers, not notify's code, keep it: during a rolling update the previous
release's notify applies directory facts to the same tables and knows nothing of this one. A database upgraded
with copies already in it has no row yet: version 0 until the first change.

Revision ID: 4f6b9e2d81a3
Revises: 8e2f4a7c1b90
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4f6b9e2d81a3"
down_revision: str | None = "8e2f4a7c1b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("copy_people", "copy_units", "copy_unions")
BUMP = (
    "INSERT INTO notify_directory_versions (tenant, version, stamp) VALUES ({tenant}, 1, {stamp}) "
    "ON CONFLICT (tenant) DO UPDATE SET version = notify_directory_versions.version + 1, stamp = excluded.stamp"
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "notify_directory_versions",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stamp", sa.String(36), nullable=False),
    )
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION notify_directory_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE t text;\nBEGIN\n  IF TG_OP = 'DELETE' THEN t := OLD.tenant; ELSE t := NEW.tenant; END IF;\n"
            f"  {BUMP.format(tenant='t', stamp='CAST(gen_random_uuid() AS text)')};\n  RETURN NULL;\nEND $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_directory_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION notify_directory_version_bump()"
            )
    else:
        for table in TABLES:
            for event, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD")):
                op.execute(
                    f"CREATE TRIGGER {table}_directory_version_{event} AFTER {event.upper()} ON {table} "
                    f"FOR EACH ROW BEGIN {BUMP.format(tenant=f'{row}.tenant', stamp='lower(hex(randomblob(16)))')}; END"
                )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for table in TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_directory_version ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_directory_version_{event}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS notify_directory_version_bump()")
    op.drop_table("notify_directory_versions")
