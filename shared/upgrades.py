"""Upgrading a durable consumer: a new version (``<service>-<purpose>-v<N+1>``, shared/streams.py) starts where
the operator says (``hoithi streams --start-sequence N`` / ``--start-time T``) instead of replaying years, and
the versions it supersedes are offered for deletion once it has caught up (nothing pending, nothing unacked).

Until then both versions stay: the old one is what a rollback binds to, and deleting a consumer is final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared.settings import Settings
from shared.streams import consumer_configs

_VERSIONED = re.compile(r"^(?P<base>.+)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class Superseded:
    """A consumer on ``stream`` older than the declared ``successor`` of the same service and purpose."""

    stream: str
    durable: str
    successor: str
    successor_behind: int  # messages the successor has not yet delivered, or delivered and not acked

    @property
    def caught_up(self) -> bool:
        return self.successor_behind == 0


async def superseded_consumers(js: JetStreamContext, settings: Settings) -> list[Superseded]:
    """Every live consumer whose declared successor (same ``<service>-<purpose>``, a higher version) exists."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for stream, cc in consumer_configs(settings):
        m = _VERSIONED.match(cc.durable_name or "")
        if m:
            latest[(stream, m["base"])] = (int(m["version"]), cc.durable_name or "")
    out: list[Superseded] = []
    for stream in sorted({s for s, _ in latest}):
        try:
            live = await js.consumers_info(stream)
        except NotFoundError:
            continue
        for info in live:
            m = _VERSIONED.match(info.name or "")
            if not m or (stream, m["base"]) not in latest:
                continue
            version, successor = latest[(stream, m["base"])]
            if int(m["version"]) >= version:
                continue
            try:
                succ = await js.consumer_info(stream, successor)
            except NotFoundError:
                continue
            behind = (succ.num_pending or 0) + (succ.num_ack_pending or 0)
            out.append(Superseded(stream, info.name or "", successor, behind))
    return sorted(out, key=lambda s: (s.stream, s.durable))


async def delete_superseded(js: JetStreamContext, found: list[Superseded]) -> list[str]:
    """Delete the superseded consumers whose successor has caught up; say what was kept and why."""
    done = []
    for s in found:
        if not s.caught_up:
            done.append(
                f"kept {s.stream}/{s.durable}: {s.successor} is still {s.successor_behind} messages behind"
            )
            continue
        await js.delete_consumer(s.stream, s.durable)
        done.append(f"deleted {s.stream}/{s.durable} (superseded by {s.successor}, caught up)")
    return done


# The release the running deployments have: its code must keep working on a database migrated to this tree's
# head while a rolling update replaces it (expand/contract; tests/integration/test_upgrade_rolling.py runs it).
# Advance it when a release is cut, together with the contract revisions the release may now carry.
PREVIOUS_RELEASE = "8fb68ab"
ROLLING_SERVICES: tuple[str, ...] = ("campaign", "submissions", "rewards", "notify")


# -- expand/contract ------------------------------------------------------------------------------------------
#
# A release's migrations only *expand* the schema: new tables, new nullable columns or columns with a default,
# new indexes. Old code keeps working on the result, so old and new processes share one database during a
# rolling update. Dropping or renaming a table or column, changing a column's type, or making it NOT NULL
# *contracts* it: that waits for the next release, when no old code reads it any more, and its revision is
# listed in CONTRACT_REVISIONS with the release whose code stopped using what it removes.

# Each service's Alembic head in PREVIOUS_RELEASE: the revisions after it are this release's, held to the rule.
RELEASED_HEADS: dict[str, str] = {
    "campaign": "5d2f8b1c4e60",
    "notify": "159f552de70c",
    "rewards": "127cf88119fb",
    "submissions": "0adf41425dcc",
}

# revision -> why it may contract. Empty a release's entries when PREVIOUS_RELEASE moves past it.
CONTRACT_REVISIONS: dict[str, str] = {}

# What the *next* release contracts: the expand of this release that it completes (a contract step ships one
# release after its expand, once no running code reads what it removes). Its revision goes in
# CONTRACT_REVISIONS then, with this reason.
NEXT_CONTRACTS: dict[str, str] = {
    "campaign": "drop directory_unions and its mirror triggers (a7c3e9d1f402): copy_unions alone since this release",
    "notify": "drop notify_unions and its mirror triggers (b84d2f0e6c17): copy_unions alone since this release",
    "rewards": "stop folding subjects the previous release applied (e5b3c8f1a2d7): once no release before this "
    "one runs, the consumer keeps every subject's standings; fold what is left, then drop folded_facts and its index",
}


def mirror_triggers(
    dialect: str,
    source: str,
    target: str,
    key: tuple[str, ...],
    insert: dict[str, str],
    update: tuple[str, ...],
    newer: str | None = None,
) -> list[str]:
    """SQL (PostgreSQL or SQLite) for triggers copying every insert, update and delete of ``source`` into
    ``target`` in the same transaction: the dual write of an expand step, so code reading either table sees
    what code writing the other one wrote. ``insert``: ``target``'s columns and their value over ``NEW``;
    ``update``: the columns an existing row takes; ``newer``: a sequence column — the row is taken only from a
    higher one (as ``upsert_newer``). Two mirrors in opposite directions stop after one round: the second write
    finds its values already there and changes nothing."""
    name = f"{source}_to_{target}"
    where = " AND ".join(f"{k} = OLD.{k}" for k in key)
    changed = " OR ".join(f"{target}.{c} <> excluded.{c}" for c in update)
    guard = f"{target}.{newer} < excluded.{newer}" if newer else f"({changed})"
    upsert = (
        f"INSERT INTO {target} ({', '.join(insert)}) VALUES ({', '.join(insert.values())}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)} "
        f"WHERE {guard}"
    )
    delete = f"DELETE FROM {target} WHERE {where}"
    if dialect == "postgresql":
        return [
            (
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  IF TG_OP = 'DELETE' THEN\n    {delete};\n    RETURN OLD;\n  END IF;\n"
                f"  {upsert};\n  RETURN NEW;\nEND $$"
            ),
            (
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {source} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            ),
        ]
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {source} FOR EACH ROW BEGIN {upsert}; END",
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {source} FOR EACH ROW BEGIN {upsert}; END",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source} FOR EACH ROW BEGIN {delete}; END",
        ]
    raise ValueError(f"no mirror triggers for {dialect}")


def drop_mirror_triggers(dialect: str, source: str, target: str) -> list[str]:
    """The reverse of ``mirror_triggers``."""
    name = f"{source}_to_{target}"
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {source}", f"DROP FUNCTION IF EXISTS {name}()"]
    return [f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("insert", "update", "delete")]


_CONTRACTING = (
    (re.compile(r"\bDROP\s+TABLE\b", re.IGNORECASE), "drops a table"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.IGNORECASE), "drops a column"),
    (re.compile(r"\bRENAME\b", re.IGNORECASE), "renames a table or column"),
    (
        re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.IGNORECASE),
        "changes a column's type",
    ),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+SET\s+NOT\s+NULL\b", re.IGNORECASE), "makes a column NOT NULL"),
    (
        re.compile(
            r"\bADD\s+COLUMN\s+(?:(?!\bDEFAULT\b)[^;])*\bNOT\s+NULL\b(?:(?!\bDEFAULT\b)[^;])*;", re.IGNORECASE
        ),
        "adds a NOT NULL column without a default",
    ),
)


def contracting_statements(sql: str) -> list[str]:
    """What in a revision's SQL (PostgreSQL, offline) would break the previous release's code."""
    found = []
    for statement in sql.split(";"):
        lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
        text = " ".join(" ".join(lines).split())
        for pattern, what in _CONTRACTING:
            if text and pattern.search(text + ";"):
                found.append(f"{what}: {text};")
                break
    return found


# -- event schema versions: consumers first -------------------------------------------------------------------
#
# The rule: a producer emits version N of a type only when every consumer of that type accepts N. A new version
# ships in two steps: every consumer *accepts* it (its model in the catalogue's VERSIONS, the schema committed)
# before any producer emits it. Within one release that holds by itself: a type whose current version the
# previous release's consumers do not accept is *negotiated* — its producer emits the highest version every
# durable consumer on the stream accepts (their NATS metadata, shared/events/versions.py), so while a consumer
# of the previous release runs (its durable has no or older metadata) the older version goes out, and the new
# one once that durable is gone. Otherwise a consumer of the previous release, still running during the rolling
# update, would receive a version it cannot read and dead-letter it.


def emitted_before_accepted(emitted: dict[str, int], previously_accepted: set[tuple[str, int]]) -> list[str]:
    """Each type whose emitted version the previous release's consumers would not accept. A type the previous
    release did not know at all is fine: no old consumer subscribes to it."""
    known = {t for t, _ in previously_accepted}
    return sorted(
        f"{t} v{v}: the previous release accepts only "
        + ", ".join(f"v{n}" for tt, n in sorted(previously_accepted) if tt == t)
        for t, v in emitted.items()
        if t in known and (t, v) not in previously_accepted
    )


def unsafe_emissions(
    emitted: dict[str, int], previously_accepted: set[tuple[str, int]], negotiated: set[str]
) -> list[str]:
    """The rule, checked on the catalogue: each type emitted at a version the previous release's consumers do not
    accept, whose producer does not negotiate (so would emit it while they run), or whose negotiation could not
    fall back to a version they accept."""
    problems = []
    for problem in emitted_before_accepted(emitted, previously_accepted):
        type_ = problem.split(" ", 1)[0]
        if type_ not in negotiated:
            problems.append(f"{problem}, and its producer does not negotiate")
        elif not any((type_, v) in previously_accepted for v in range(1, emitted[type_])):
            problems.append(f"{problem}, and no older version it may fall back to is accepted")
    return problems
