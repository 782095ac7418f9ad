"""h-house: unions live with units and people in the shared copy (copy_unions, filled from the inbox)

Submissions kept no unions until now, but its inbox holds every ``directory.unit.changed`` it applied: the
newest union fact of each (tenant, union) fills the copy, as the consumer would have.
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.documents import Union
from shared.migrate import create_shared_tables, drop_shared_tables

revision = "53095da8646d"
down_revision = "0adf41425dcc"


def upgrade() -> None:
    create_shared_tables("copy_unions")
    if op.get_context().as_sql:
        return  # offline SQL: nothing to read the inbox from
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    rows = op.get_bind().execute(
        sa.text("SELECT envelope FROM inbox WHERE event_type = 'directory.unit.changed'")
    )
    for (raw,) in rows:
        env = json.loads(bytes(raw))
        union = (env.get("data") or {}).get("union")
        if not union:
            continue
        key = (env["tenant"], union["id"])
        sequence = int(env.get("sequence") or 0)
        if key not in kept or kept[key]["sequence"] < sequence:
            doc = Union.model_validate(union).model_dump_json()  # as the copy writes it
            kept[key] = {"tenant": key[0], "union_id": key[1], "doc": doc, "sequence": sequence}
    if kept:
        table = sa.table(
            "copy_unions",
            sa.column("tenant", sa.String),
            sa.column("union_id", sa.String),
            sa.column("doc", sa.Text),
            sa.column("sequence", sa.Integer),
        )
        op.bulk_insert(table, list(kept.values()))


def downgrade() -> None:
    drop_shared_tables("copy_unions")
