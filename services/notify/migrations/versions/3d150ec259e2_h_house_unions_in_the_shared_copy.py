"""h-house: notify's unions move into the shared copy (notify_unions -> copy_unions), rows as they are.

Expand only: notify_unions stays, for the previous release's notify that still reads and writes it during a
rolling update; b84d2f0e6c17 keeps the two tables in step, and the next release drops the old one. (Before that
rule this revision dropped it; b84d2f0e6c17 re-creates it where it is gone.)
"""

from alembic import op

from shared.migrate import create_shared_tables, drop_shared_tables

revision = "3d150ec259e2"
down_revision = "159f552de70c"


def upgrade() -> None:
    create_shared_tables("copy_unions")
    op.execute(
        "INSERT INTO copy_unions (tenant, union_id, doc, sequence) "
        "SELECT tenant, union_id, doc, sequence FROM notify_unions"
    )


def downgrade() -> None:
    # notify_unions holds every union: the mirror of b84d2f0e6c17 kept it in step until it was downgraded.
    drop_shared_tables("copy_unions")
