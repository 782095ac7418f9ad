"""directory version: campaign_directory_versions, one row per tenant, changed by triggers in the same
transaction as every insert, update and delete of copy_people, copy_units and copy_unions

Issue 16. Participation checked the directory it keeps parsed against every person's stored document on each
read — tens of MB at 100,000 people before any tally. It now checks one primary-key row. Triggers, not
campaign's code, keep it: during a rolling update the previous release writes the same tables and knows nothing
of this one. A database upgraded with a directory already in it gets a row per tenant the copy holds, so
version 0 (no row) always means an empty copy.

Revision ID: f3b5d7e9a1c2
Revises: e2a4c6b8d0f1
Create Date: 2026-12-05 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3b5d7e9a1c2"
down_revision: str | None = "e2a4c6b8d0f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("copy_people", "copy_units", "copy_unions")
BUMP = (
    "INSERT INTO campaign_directory_versions (tenant, version, stamp) VALUES ({tenant}, 1, {stamp}) "
    "ON CONFLICT (tenant) DO UPDATE SET version = campaign_directory_versions.version + 1, stamp = excluded.stamp"
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "campaign_directory_versions",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stamp", sa.String(36), nullable=False),
    )
    stamp = "CAST(gen_random_uuid() AS text)" if dialect == "postgresql" else "lower(hex(randomblob(16)))"
    held = " UNION ".join(f"SELECT tenant FROM {table}" for table in TABLES)
    op.execute(
        f"INSERT INTO campaign_directory_versions (tenant, version, stamp) SELECT tenant, 1, {stamp} FROM ({held}) held"
    )
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION campaign_directory_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE t text;\nBEGIN\n  IF TG_OP = 'DELETE' THEN t := OLD.tenant; ELSE t := NEW.tenant; END IF;\n"
            f"  {BUMP.format(tenant='t', stamp='CAST(gen_random_uuid() AS text)')};\n  RETURN NULL;\nEND $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_directory_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION campaign_directory_version_bump()"
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
        op.execute("DROP FUNCTION IF EXISTS campaign_directory_version_bump()")
    op.drop_table("campaign_directory_versions")
