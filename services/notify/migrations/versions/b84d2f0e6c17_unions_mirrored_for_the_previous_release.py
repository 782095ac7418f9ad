"""Unions mirrored for the previous release: notify_unions and copy_unions kept in step by triggers.

The previous release's notify keeps union facts in notify_unions; this release's in copy_unions. During a rolling
update both apply facts to this database, so each table's writes are copied into the other in the same
transaction (both directions, the higher sequence wins as in upsert_newer; deletes too). notify_unions is
re-created where 3d150ec259e2 dropped it (a database migrated before the expand/contract rule) and filled from
copy_unions. The next release drops the triggers and notify_unions (shared/upgrades.NEXT_CONTRACTS).
"""

from alembic import op

from shared.upgrades import drop_mirror_triggers, mirror_triggers

revision = "b84d2f0e6c17"
down_revision = "6c1e0f3a9b27"

KEY = ("tenant", "union_id")
FIELDS = {"tenant": "NEW.tenant", "union_id": "NEW.union_id", "doc": "NEW.doc", "sequence": "NEW.sequence"}


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.execute(
        "CREATE TABLE IF NOT EXISTS notify_unions (tenant VARCHAR(100) NOT NULL, union_id VARCHAR(100) NOT NULL, "
        "doc TEXT NOT NULL, sequence INTEGER NOT NULL, PRIMARY KEY (tenant, union_id))"
    )
    op.execute(
        "INSERT INTO notify_unions (tenant, union_id, doc, sequence) SELECT c.tenant, c.union_id, c.doc, "
        "c.sequence FROM copy_unions c WHERE NOT EXISTS (SELECT 1 FROM notify_unions n "
        "WHERE n.tenant = c.tenant AND n.union_id = c.union_id)"
    )
    for sql in (
        *mirror_triggers(
            dialect, "notify_unions", "copy_unions", KEY, FIELDS, ("doc", "sequence"), "sequence"
        ),
        *mirror_triggers(
            dialect, "copy_unions", "notify_unions", KEY, FIELDS, ("doc", "sequence"), "sequence"
        ),
    ):
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for sql in (
        *drop_mirror_triggers(dialect, "copy_unions", "notify_unions"),
        *drop_mirror_triggers(dialect, "notify_unions", "copy_unions"),
    ):
        op.execute(sql)
