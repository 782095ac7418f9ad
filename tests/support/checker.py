"""The checker of the fault runs (two replicas in CI, ``make soak``): what was accepted over HTTP against what each
service applied. Its verdict names three kinds of defect, each of which must be zero:

- **lost**: a report answered 201 (a receipt number) that a service never applied — campaign's assignment of the
  author not fulfilled by it, no rewards ledger row for it, no receipt email (notify's delivery row, and the mail
  at the SMTP server);
- **applied twice**: more than one of those for one receipt — two ``assignment.fulfilled`` facts for one
  assignment in campaign's outbox, two ledger rows or more than one point on the priority list, two receipt
  deliveries or two receipt mails; also anything applied for a submission nobody was given a receipt for;
- **false miss**: a ``deadline.missed`` (campaign's outbox, where every emitted fact is kept) for an assignee with
  a live submission received before the deadline in force (``extended_to`` if the deadline was extended).

It reads each service's own database (direct URLs, never through a test's TCP proxy), campaign's and rewards'
HTTP APIs where they say what a user sees, and the mail sink. It waits for nothing: callers settle first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx

__all__ = ["Receipt", "Verdict", "check", "receipts"]

RECEIPT_TEMPLATE = "submission.received"
MISSED_TEMPLATE = "deadline.missed"


@dataclass(frozen=True)
class Receipt:
    """One report accepted over HTTP: the 201's submission id, receipt number and reception time."""

    person: str
    submission_id: str
    receipt_number: str
    received_at: datetime


def receipts(answers: Mapping[str, Any]) -> dict[str, Receipt]:
    """person -> Receipt for every answer with status 201 (``answers``: person -> object with .status, .body)."""
    out: dict[str, Receipt] = {}
    for person, a in answers.items():
        if a.status == 201:
            out[person] = Receipt(
                person,
                a.body["submission_id"],
                a.body["receipt_number"],
                datetime.fromisoformat(a.body["received_at"]),
            )
    return out


@dataclass
class Verdict:
    accepted: int
    lost: dict[str, list[str]] = field(default_factory=dict)  # where -> submission ids (or persons) missing
    twice: dict[str, list[str]] = field(default_factory=dict)  # where -> applied more than once
    phantom: dict[str, list[str]] = field(default_factory=dict)  # where -> applied without a receipt
    false_misses: list[str] = field(default_factory=list)  # assignees
    misses: int = 0  # distinct deadline.missed facts for the part
    missed_twice: list[str] = field(default_factory=list)  # assignments with more than one distinct miss

    @property
    def ok(self) -> bool:
        return not (
            any(self.lost.values())
            or any(self.twice.values())
            or any(self.phantom.values())
            or self.false_misses
            or self.missed_twice
        )

    def summary(self) -> str:
        def n(d: dict[str, list[str]]) -> str:
            return ", ".join(f"{k} {len(v)} {sorted(v)[:5]}" for k, v in d.items() if v) or "0"

        return (
            f"accepted {self.accepted}: lost {n(self.lost)}; applied twice {n(self.twice)}; "
            f"without receipt {n(self.phantom)}; false misses {len(self.false_misses)} "
            f"{sorted(self.false_misses)[:5]}; misses {self.misses} (twice: {len(self.missed_twice)})"
        )


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _more_than_once(counts: Counter[str]) -> list[str]:
    return [k for k, v in counts.items() if v > 1]


async def check(
    accepted: Mapping[str, Receipt],
    databases: Mapping[str, str],
    *,
    tenant: str,
    edition: str,
    part: str,
    rewards_url: str | None = None,
    reader_token: str | None = None,
    mail: Iterable[EmailMessage] | None = None,
    emails: Mapping[str, str] | None = None,
) -> Verdict:
    """The verdict on ``accepted`` (person -> Receipt) against campaign's, rewards' and (if in ``databases``)
    notify's databases; the priority list through rewards' API when ``rewards_url`` and ``reader_token`` are
    given; the receipt mails in ``mail`` (``emails``: person -> address) when given."""
    v = Verdict(accepted=len(accepted))
    by_submission = {r.submission_id: r for r in accepted.values()}
    want_people = set(accepted)

    # ---- campaign: assignments of the part, and the facts it emitted about them (its outbox keeps every one).
    rows = await _fetch(
        databases["campaign"],
        "SELECT id, assignee_id, status, submission_id, deadline, extended_to FROM assignments "
        "WHERE tenant = $1 AND edition = $2 AND part = $3",
        tenant,
        edition,
        part,
    )
    assignment_of = {r["assignee_id"]: r for r in rows}
    v.lost["campaign"] = [
        r.submission_id
        for p, r in accepted.items()
        if p not in assignment_of
        or assignment_of[p]["status"] != "fulfilled"
        or assignment_of[p]["submission_id"] != r.submission_id
    ]
    v.phantom["campaign"] = [
        str(r["submission_id"])
        for r in rows
        if r["status"] == "fulfilled" and r["submission_id"] not in by_submission
    ]
    emitted = await _fetch(
        databases["campaign"],
        "SELECT event_id, event_type, payload FROM outbox WHERE event_type = ANY($1::text[])",
        ["assignment.fulfilled", "deadline.missed"],
    )
    fulfilled: Counter[str] = Counter()
    missed: dict[str, set[str]] = {}
    for e in emitted:
        if not e["payload"]:  # a pruned tombstone: cannot happen within a run (7 days)
            continue
        data = json.loads(e["payload"])["data"]
        if data.get("part") not in (None, part):
            continue
        if e["event_type"] == "assignment.fulfilled":
            fulfilled[str(data.get("submission_id"))] += 1
        else:
            missed.setdefault(data["assignment_id"], set()).add(e["event_id"])
    v.twice["campaign"] = _more_than_once(fulfilled)
    v.lost["campaign"] += [s for s in by_submission if s not in fulfilled and s not in v.lost["campaign"]]

    # ---- false misses: a miss for an assignee whose live submission was received before the deadline in force.
    by_assignment = {r["id"]: r for r in rows}
    v.misses = sum(len(ids) for ids in missed.values())
    v.missed_twice = [a for a, ids in missed.items() if len(ids) > 1]
    for assignment_id in missed:
        row = by_assignment.get(assignment_id)
        if row is None:
            continue
        receipt = accepted.get(row["assignee_id"])
        deadline = row["extended_to"] or row["deadline"]
        if receipt is not None and receipt.received_at < deadline:
            v.false_misses.append(row["assignee_id"])

    # ---- rewards: one ledger row per author, for their submission, and one receipt's points on the list
    # (receipts' rows only: a deadline.missed flag or deduction is a ledger row of its own).
    ledger = await _fetch(
        databases["rewards"],
        "SELECT submission_id, participant_id FROM ledger WHERE participant_kind = 'person' "
        "AND tenant = $1 AND edition = $2 AND part = $3 AND rule LIKE 'submission.received/%'",
        tenant,
        edition,
        part,
    )
    per_submission = Counter(str(r["submission_id"]) for r in ledger)
    v.lost["rewards"] = [s for s in by_submission if s not in per_submission]
    v.twice["rewards"] = _more_than_once(per_submission)
    v.phantom["rewards"] = sorted({s for s in per_submission if s not in by_submission})
    if rewards_url and reader_token:
        async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {reader_token}"}) as c:
            pl = await c.get(f"{rewards_url}/tenants/{tenant}/editions/{edition}/priority-list")
            pl.raise_for_status()
        points = {p["person_id"]: (p["points"], len(p["reasons"])) for p in pl.json()["persons"]}
        v.twice["rewards"] += [p for p in want_people if points.get(p, (0, 0))[1] > 1]
        v.lost["rewards"] += [p for p in want_people if p not in points]

    # ---- notify: one receipt delivery per author (caused by their receipt), and one receipt mail at the server.
    if "notify" in databases:
        deliveries = await _fetch(
            databases["notify"],
            "SELECT recipient, status FROM deliveries WHERE channel = 'email' AND template = $1 AND tenant = $2",
            RECEIPT_TEMPLATE,
            tenant,
        )
        per_recipient = Counter(str(r["recipient"]) for r in deliveries)
        v.lost["notify"] = [p for p in want_people if p not in per_recipient]
        v.twice["notify"] = _more_than_once(per_recipient)
        v.phantom["notify"] = sorted(set(per_recipient) - want_people)
        v.lost["notify"] += [
            f"{r['recipient']} ({r['status']})"
            for r in deliveries
            if r["status"] != "sent" and r["recipient"] in want_people
        ]
    if mail is not None and emails is not None:
        got = Counter(str(m["To"]) for m in mail if str(m["X-Hoithi-Template"]) == RECEIPT_TEMPLATE)
        v.lost["mail"] = [p for p in want_people if got.get(emails[p], 0) == 0]
        v.twice["mail"] = [p for p in want_people if got.get(emails[p], 0) > 1]
    return v
