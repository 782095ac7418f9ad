"""h-house: campaign's unions move into the shared copy (directory_unions -> copy_unions).

Campaign applies its own directory facts to the shared copy tables; its unions now do too. Each union keeps its
document and the last sequence campaign numbered for it (0 if none is known: any later fact replaces it).

Expand only: directory_unions stays, for the previous release's campaign that still reads and writes it during a
rolling update; a7c3e9d1f402 keeps the two tables in step, and the next release drops the old one. (Before that
rule this revision dropped it; a7c3e9d1f402 re-creates it where it is gone.)
"""

from alembic import op

from shared.migrate import create_shared_tables, drop_shared_tables

revision = "ff1b60e82e77"
down_revision = "5d2f8b1c4e60"

LAST = "(SELECT s.last FROM event_sequences s WHERE s.subject = directory_unions.union_id)"


def upgrade() -> None:
    create_shared_tables("copy_unions")
    op.execute(
        "INSERT INTO copy_unions (tenant, union_id, doc, sequence) "
        f"SELECT tenant, union_id, doc, COALESCE({LAST}, 0) FROM directory_unions"
    )


def downgrade() -> None:
    # directory_unions holds every union: the mirror of a7c3e9d1f402 kept it in step until it was downgraded.
    drop_shared_tables("copy_unions")
