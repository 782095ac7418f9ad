"""Unions mirrored for the previous release: directory_unions and copy_unions kept in step by triggers.

The previous release's campaign reads and writes directory_unions; this release's reads and writes copy_unions.
During a rolling update both run on this database, so each table's writes are copied into the other in the same
transaction (both directions; deletes too). directory_unions is re-created where ff1b60e82e77 dropped it (a
database migrated before the expand/contract rule) and filled from copy_unions. The next release drops the
triggers and directory_unions (shared/upgrades.NEXT_CONTRACTS).
"""

from alembic import op

from shared.upgrades import drop_mirror_triggers, mirror_triggers

revision = "a7c3e9d1f402"
down_revision = "2d28bbf914de"

KEY = ("tenant", "union_id")
# campaign numbers a union's facts in event_sequences; a row the old code writes takes the last number known
LAST = "COALESCE((SELECT s.last FROM event_sequences s WHERE s.subject = NEW.union_id), 0)"


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.execute(
        "CREATE TABLE IF NOT EXISTS directory_unions (tenant VARCHAR(100) NOT NULL, "
        "union_id VARCHAR(100) NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, union_id))"
    )
    op.execute(
        "INSERT INTO directory_unions (tenant, union_id, doc) SELECT c.tenant, c.union_id, c.doc "
        "FROM copy_unions c WHERE NOT EXISTS (SELECT 1 FROM directory_unions d "
        "WHERE d.tenant = c.tenant AND d.union_id = c.union_id)"
    )
    op.execute(
        "UPDATE directory_unions SET doc = (SELECT c.doc FROM copy_unions c WHERE c.tenant = "
        "directory_unions.tenant AND c.union_id = directory_unions.union_id) WHERE EXISTS (SELECT 1 FROM "
        "copy_unions c WHERE c.tenant = directory_unions.tenant AND c.union_id = directory_unions.union_id "
        "AND c.doc <> directory_unions.doc)"
    )
    fields = {"tenant": "NEW.tenant", "union_id": "NEW.union_id", "doc": "NEW.doc"}
    for sql in (
        *mirror_triggers(
            dialect, "directory_unions", "copy_unions", KEY, {**fields, "sequence": LAST}, ("doc",)
        ),
        *mirror_triggers(dialect, "copy_unions", "directory_unions", KEY, fields, ("doc",)),
    ):
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for sql in (
        *drop_mirror_triggers(dialect, "copy_unions", "directory_unions"),
        *drop_mirror_triggers(dialect, "directory_unions", "copy_unions"),
    ):
        op.execute(sql)
