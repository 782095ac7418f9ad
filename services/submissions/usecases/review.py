"""The secretariat's eligibility rulings, the council's review and the selection, as use cases.

Each command is a small frozen dataclass (what is asked, and by whom); each use case runs inside one unit of
work (``shared/uow.py``) — state, events and the idempotent answer commit together — and refuses with a
``DomainError``. The reads (reviewers, ranking, progress, outcomes) are queries of the runtime: no unit of
work, a connection of their own. The routers are ``services/submissions/api/review.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions import domain, models
from services.submissions.usecases import access, intake
from shared.clock import VN
from shared.documents import Council, Edition, SelectionPart, deadline_label_en, deadline_label_vi
from shared.errors import DomainError, Refusal, field_error
from shared.events.envelope import deterministic_id
from shared.service import Caller, Runtime
from shared.uow import UnitOfWork

Uow = UnitOfWork[Runtime]


# ---------------------------------------------------------------------------------------------- refusals


def forbidden(en: str, vi: str) -> DomainError:
    return DomainError(Refusal.FORBIDDEN, en, vi, code="forbidden")


def not_found() -> DomainError:
    return DomainError(Refusal.NOT_FOUND, "No such submission.", "Không tìm thấy hồ sơ.", code="not_found")


def decided() -> DomainError:
    return DomainError(
        Refusal.CONFLICT,
        "The selection is already decided.",
        "Hội đồng đã quyết định xét chọn.",
        code="decided",
    )


def not_member(field_name: str) -> dict[str, Any]:
    return field_error(field_name, "Not a council member.", "Không phải thành viên Hội đồng.", "not_member")


def chair_or_secretariat(caller: Caller, council: Council) -> None:
    if not (caller.person_id == council.chair or caller.has_role("secretariat")):
        raise forbidden(
            "Only the council chair or the secretariat.",
            "Chỉ Chủ tịch Hội đồng hoặc Thường trực được thực hiện.",
        )


# ---------------------------------------------------------------------------------------------- rulings


@dataclass(frozen=True)
class Ruling:
    """The secretariat rules a submission ineligible (``Reject``) or reverses that (``Reinstate``)."""

    tenant: str
    edition: str
    submission_id: str
    reason: str | None
    by: str


class Reject(Ruling):
    pass


class Reinstate(Ruling):
    pass


def _change_data(row: Any, now: Any) -> dict[str, Any]:
    return {
        "submission_id": row["id"],
        "kind": row["kind"],
        "part": row["part"],
        "author_id": row["author_id"],
        "unit_id": row["unit_id"],
        "at": now.astimezone(VN),
    }


async def reject(uow: Uow, cmd: Reject) -> dict[str, Any]:
    row = await access.load(uow.conn, cmd.tenant, cmd.edition, cmd.submission_id, lock=True)
    if row["status"] != "submitted":
        raise DomainError(
            Refusal.CONFLICT,
            f"Only an accepted submission can be ruled ineligible (this one is {row['status']}).",
            "Chỉ hồ sơ đã được tiếp nhận mới có thể bị xác định không hợp lệ.",
            code="not_submitted",
        )
    return await _rule(uow, cmd, row, "rejected", status="rejected")


async def reinstate(uow: Uow, cmd: Reinstate) -> dict[str, Any]:
    row = await access.load(uow.conn, cmd.tenant, cmd.edition, cmd.submission_id, lock=True)
    if row["status"] != "rejected":
        raise DomainError(
            Refusal.CONFLICT,
            "Only a submission ruled ineligible can be reinstated.",
            "Chỉ hồ sơ đã bị xác định không hợp lệ mới có thể được khôi phục.",
            code="not_rejected",
        )
    return await _rule(uow, cmd, row, "reinstated", status="submitted")


async def _rule(uow: Uow, cmd: Ruling, row: Any, ruling: str, *, status: str) -> dict[str, Any]:
    """The ruling recorded, the submission's status set, and ``submission.<ruling>`` emitted, at one instant."""
    now = uow.now()
    t = models.submissions
    await uow.conn.execute(sa.update(t).where(t.c.id == row["id"]).values(status=status))
    await uow.conn.execute(
        models.rulings.insert().values(
            id=str(uuid.uuid4()),
            submission_id=row["id"],
            ruling=ruling,
            reason=cmd.reason,
            ruled_by=cmd.by,
            ruled_at=now,
        )
    )
    await uow.emit(
        f"submission.{ruling}",
        {**_change_data(row, now), "reason": cmd.reason, f"{ruling}_by": cmd.by},
        tenant=cmd.tenant,
        edition=cmd.edition,
        subject=cmd.submission_id,
        time=now,
    )
    return {"submission_id": cmd.submission_id, "status": status, "reason": cmd.reason}


# ---------------------------------------------------------------------------------------------- review


async def _initiative(
    rt: Runtime, conn: AsyncConnection, tenant: str, edition: str, sid: str, *, lock: bool = False
) -> tuple[Any, Edition, SelectionPart, Council]:
    row = await access.load(conn, tenant, edition, sid, lock=lock)
    if row["kind"] != "initiative" or row["received_at"] is None:
        raise not_found()
    ed = await access.edition_of(rt, conn, tenant, edition)
    part, council = access.selection_of(ed, row["part"])
    return row, ed, part, council


async def _decided(conn: AsyncConnection, tenant: str, edition: str, part: str) -> bool:
    s = models.selections
    q = (
        sa.select(s.c.submission_id)
        .where(s.c.tenant == tenant, s.c.edition == edition, s.c.part == part)
        .limit(1)
    )
    return (await conn.execute(q)).first() is not None


@dataclass(frozen=True)
class DeclareConflict:
    """A council member declares a conflict of interest on an initiative (before scoring it)."""

    tenant: str
    edition: str
    submission_id: str
    member: str
    reason: str | None


async def declare_conflict(uow: Uow, cmd: DeclareConflict) -> dict[str, Any]:
    conn, sid = uow.conn, cmd.submission_id
    _row, _ed, _part, council = await _initiative(uow.rt, conn, cmd.tenant, cmd.edition, sid)
    if cmd.member not in council.members:
        raise forbidden("Council members only.", "Chỉ thành viên Hội đồng.")
    s = models.score_sheets
    sheet = (
        await conn.execute(
            sa.select(s.c.member_id).where(s.c.submission_id == sid, s.c.member_id == cmd.member)
        )
    ).first()
    if sheet is not None:
        raise DomainError(
            Refusal.CONFLICT,
            "You already scored this initiative; ask the chair to reassign it.",
            "Bạn đã chấm sáng kiến này; đề nghị Chủ tịch Hội đồng phân công lại.",
            code="already_scored",
        )
    c = models.conflicts
    await conn.execute(sa.delete(c).where(c.c.submission_id == sid, c.c.member_id == cmd.member))
    await conn.execute(
        c.insert().values(submission_id=sid, member_id=cmd.member, reason=cmd.reason, declared_at=uow.now())
    )
    return {"submission_id": sid, "member_id": cmd.member, "conflict": True}


@dataclass(frozen=True)
class Reassign:
    """The chair (or the secretariat) adds and removes reviewers of an initiative."""

    tenant: str
    edition: str
    submission_id: str
    caller: Caller
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


async def reassign(uow: Uow, cmd: Reassign) -> dict[str, Any]:
    rt, conn, sid = uow.rt, uow.conn, cmd.submission_id
    row, _ed, _part, council = await _initiative(rt, conn, cmd.tenant, cmd.edition, sid)
    chair_or_secretariat(cmd.caller, council)
    review = await access.review_of(rt, conn, cmd.tenant, row, council)
    errors = []
    for i, m in enumerate(cmd.add):
        if m not in council.members:
            errors.append(not_member(f"add[{i}]"))
        elif (bar := review.barred(m)) is not None:
            refusal = domain.barred_refusal(bar)
            errors.append(field_error(f"add[{i}]", refusal.detail, refusal.detail_vi, refusal.code))
    errors += [not_member(f"remove[{i}]") for i, m in enumerate(cmd.remove) if m not in council.members]
    if errors:
        raise DomainError(
            Refusal.INVALID,
            "Invalid reassignment.",
            "Phân công lại không hợp lệ.",
            code="validation",
            errors=errors,
        )
    r = models.reassignments
    now = uow.now()
    for action, members in (("add", cmd.add), ("remove", cmd.remove)):
        for m in members:
            await conn.execute(sa.delete(r).where(r.c.submission_id == sid, r.c.member_id == m))
            await conn.execute(
                r.insert().values(
                    submission_id=sid, member_id=m, action=action, by=cmd.caller.person_id, at=now
                )
            )
    chosen, _ = await access.reviewers_of(rt, conn, cmd.tenant, row, council)
    return {"submission_id": sid, "reviewers": chosen}


@dataclass(frozen=True)
class Score:
    """A council member's score sheet (phiếu chấm) on the edition's rubric; a re-score is a new revision."""

    tenant: str
    edition: str
    submission_id: str
    member: str
    scores: dict[str, float]
    comment: str | None


async def score(uow: Uow, cmd: Score) -> dict[str, Any]:
    rt, conn, sid, member = uow.rt, uow.conn, cmd.submission_id, cmd.member
    s = models.score_sheets
    row, _ed, part, council = await _initiative(rt, conn, cmd.tenant, cmd.edition, sid, lock=True)
    if member not in council.members:
        raise forbidden("Council members only.", "Chỉ thành viên Hội đồng được chấm.")
    review = await access.review_of(rt, conn, cmd.tenant, row, council)
    if (bar := review.barred(member)) is not None:
        raise domain.barred_refusal(bar)
    if member not in review.chosen:
        raise forbidden(
            "This initiative is not assigned to you (conflict declared or reassigned).",
            "Sáng kiến này không được phân công cho bạn (đã khai xung đột lợi ích hoặc được phân công lại).",
        )
    if row["status"] != "submitted":
        raise DomainError(
            Refusal.CONFLICT,
            "This initiative is not in review.",
            "Sáng kiến này không còn được xét.",
            code="not_in_review",
        )
    if await _decided(conn, cmd.tenant, cmd.edition, part.id):
        raise decided()
    scores = domain.check_score_sheet(part.rubric, cmd.scores, cmd.comment)
    total = sum(scores.values(), Fraction(0))
    now = uow.now()
    prev = (
        await conn.execute(sa.select(s.c.revision).where(s.c.submission_id == sid, s.c.member_id == member))
    ).scalar()
    revision = (prev or 0) + 1
    values = {
        "tenant": cmd.tenant,
        "edition": cmd.edition,
        "scores": {k: str(v) for k, v in scores.items()},
        "total": float(total),
        "comment": cmd.comment,
        "revision": revision,
        "scored_at": now,
    }
    if prev is None:
        await conn.execute(s.insert().values(submission_id=sid, member_id=member, **values))
    else:
        await conn.execute(
            sa.update(s).where(s.c.submission_id == sid, s.c.member_id == member).values(**values)
        )
    await uow.emit(
        "initiative.scored",
        {
            "submission_id": sid,
            "part": part.id,
            "council_id": part.assignees.council,
            "member_id": member,
            "scores": {k: float(v) for k, v in scores.items()},
            "total": float(total),
            "comment": cmd.comment,
            "at": now.astimezone(VN),
            "revision": revision,
        },
        tenant=cmd.tenant,
        edition=cmd.edition,
        subject=sid,
        time=now,
    )
    return {"submission_id": sid, "member_id": member, "total": float(total), "revision": revision}


# ---------------------------------------------------------------------------------------------- reads


def _num(f: Fraction | None) -> float | None:
    return None if f is None else round(float(f), 2)


def _exclusion(e: domain.Exclusion) -> dict[str, Any]:
    return {"member_id": e.member_id, "reason": e.reason, "detail": e.detail, "reason_vi": e.reason_vi}


async def reviewers(rt: Runtime, caller: Caller, tenant: str, edition: str, sid: str) -> dict[str, Any]:
    """Reviewers of an initiative and who has scored, and who does not review it and why (chair, secretariat)."""
    async with rt.engine.connect() as conn:
        row, _ed, _part, council = await _initiative(rt, conn, tenant, edition, sid)
        chair_or_secretariat(caller, council)
        chosen, _ = await access.reviewers_of(rt, conn, tenant, row, council)
        s = models.score_sheets
        scored = set((await conn.execute(sa.select(s.c.member_id).where(s.c.submission_id == sid))).scalars())
        excluded = await access.review_exclusions(rt, conn, tenant, row, council)
    return {
        "submission_id": sid,
        "reviewers": [{"member_id": m, "scored": m in scored} for m in chosen],
        "excluded": [_exclusion(e) for e in excluded],
    }


async def _in_review(conn: AsyncConnection, tenant: str, edition: str, initiative_part: str) -> list[Any]:
    t = models.submissions
    q = sa.select(t).where(
        t.c.tenant == tenant,
        t.c.edition == edition,
        t.c.part == initiative_part,
        t.c.kind == "initiative",
        t.c.status == "submitted",
    )
    return list((await conn.execute(q.order_by(t.c.received_at))).mappings().all())


async def _sheets(conn: AsyncConnection, ids: list[str]) -> dict[str, list[Any]]:
    s = models.score_sheets
    out: dict[str, list[Any]] = {i: [] for i in ids}
    if ids:
        for r in (
            await conn.execute(sa.select(s).where(s.c.submission_id.in_(ids)).order_by(s.c.member_id))
        ).mappings():
            out[r["submission_id"]].append(r)
    return out


async def ranking_rows(
    rt: Runtime, conn: AsyncConnection, tenant: str, edition: str
) -> tuple[SelectionPart, Council, list[dict[str, Any]]]:
    """The initiatives in review, ranked as the edition's rubric states (``_``-keys are for the caller only)."""
    ed = await access.edition_of(rt, conn, tenant, edition)
    init = access.initiative_part(ed, None)
    part, council = access.selection_of(ed, init.id)
    rows = await _in_review(conn, tenant, edition, init.id)
    sheets = await _sheets(conn, [r["id"] for r in rows])
    entries = [
        domain.Entry(
            r["id"],
            r["received_at"],
            [sum((Fraction(v) for v in sh["scores"].values()), Fraction(0)) for sh in sheets[r["id"]]],
        )
        for r in rows
    ]
    by_id = {r["id"]: r for r in rows}
    out = []
    for rk in domain.rank(entries, part.rubric):
        r = by_id[rk.submission_id]
        out.append(
            {
                "submission_id": rk.submission_id,
                "receipt_number": r["receipt_number"],
                "title": r["body"]["title"],
                "unit_id": r["unit_id"],
                "unit_name": r["body"].get("unit_name"),
                "received_at": r["received_at"].astimezone(VN).isoformat(),
                "rank": rk.rank,
                "score": _num(rk.score),
                "mean": _num(rk.mean),
                "median": _num(rk.median),
                "disagreement": None if rk.disagreement is None else round(rk.disagreement, 2),
                "disputed": rk.disputed,
                "sheets": rk.sheets,
                "_units": access.author_units(r),
                "_row": r,
                "_scores": {sh["member_id"]: sh for sh in sheets[rk.submission_id]},
            }
        )
    return part, council, out


async def ranking(rt: Runtime, caller: Caller, tenant: str, edition: str) -> dict[str, Any]:
    """Aggregates and ranking: everything for the chair and the overseers; a member never sees the scores of
    an entry of their own unit (or a unit merged with it) before the selection."""
    async with rt.engine.connect() as conn:
        part, council, rows = await ranking_rows(rt, conn, tenant, edition)
        is_decided = await _decided(conn, tenant, edition, part.id)
        full = access.is_overseer(caller) or caller.person_id == council.chair
        if not full and caller.person_id not in council.members:
            raise forbidden("Council and secretariat only.", "Chỉ Hội đồng và Thường trực được xem.")
        # who does not review each one, and why (own unit and through whom, declared conflict, chair)
        excluded = {
            r["submission_id"]: [
                _exclusion(e) for e in await access.review_exclusions(rt, conn, tenant, r["_row"], council)
            ]
            for r in (rows if full else [])
        }
        # a member barred from an entry (own unit, or a unit merged with it) never sees its scores before
        # the selection
        barred = {
            r["submission_id"]
            for r in (rows if not full and not is_decided and caller.person_id in council.members else [])
            if (await access.review_of(rt, conn, tenant, r["_row"], council)).barred(caller.person_id)
        }
    my_unit = caller.person.unit if caller.person else None
    out = []
    for r in rows:
        pub = {k: v for k, v in r.items() if not k.startswith("_")}
        if full:
            pub["excluded"] = excluded[r["submission_id"]]
        if not full and not is_decided and (my_unit in r["_units"] or r["submission_id"] in barred):
            # Never their own unit's scores before the selection.
            pub.update(
                rank=None, score=None, mean=None, median=None, disagreement=None, disputed=None, hidden=True
            )
        out.append(pub)
    return {
        "part": part.id,
        "aggregate": part.rubric.aggregate,
        "ties": list(part.rubric.ties),
        "decided": is_decided,
        "initiatives": out,
    }


async def progress(
    rt: Runtime, caller: Caller, tenant: str, edition: str, member: str | None
) -> dict[str, Any]:
    """Reviewers' progress, done / to do: a member their own, the chair and the overseers anyone's."""
    async with rt.engine.connect() as conn:
        ed = await access.edition_of(rt, conn, tenant, edition)
        init = access.initiative_part(ed, None)
        part, council = access.selection_of(ed, init.id)
        full = access.is_overseer(caller) or caller.person_id == council.chair
        if member is None:
            members = list(council.members) if full else [caller.person_id]
        else:
            members = [member]
        if not full and members != [caller.person_id]:
            raise forbidden("Your own progress only.", "Chỉ xem được tiến độ của chính mình.")
        if caller.person_id not in council.members and not full:
            raise forbidden("Council members only.", "Chỉ thành viên Hội đồng.")
        rows = await _in_review(conn, tenant, edition, init.id)
        sheets = await _sheets(conn, [r["id"] for r in rows])
        report: dict[str, Any] = {m: {"member_id": m, "done": [], "to_do": []} for m in members}
        for r in rows:
            chosen, _ = await access.reviewers_of(rt, conn, tenant, r, council)
            scored = {sh["member_id"] for sh in sheets[r["id"]]}
            for m in members:
                if m in chosen:
                    item = {
                        "submission_id": r["id"],
                        "title": r["body"]["title"],
                        "receipt_number": r["receipt_number"],
                    }
                    report[m]["done" if m in scored else "to_do"].append(item)
    for v in report.values():
        v["done_count"], v["to_do_count"] = len(v["done"]), len(v["to_do"])
    return {"part": part.id, "members": list(report.values())}


# ---------------------------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Select:
    """The council's decision: the initiatives selected for the provincial contest, with notes."""

    tenant: str
    edition: str
    caller: Caller
    selected: list[str]
    notes: dict[str, str] = field(default_factory=dict)
    decision_notes: str | None = None


async def select(uow: Uow, cmd: Select) -> dict[str, Any]:
    rt, conn, tenant, edition = uow.rt, uow.conn, cmd.tenant, cmd.edition
    # The receipt lock first, the clock after: the selection's intake.closed counts this decision exactly
    # when it was made before the deadline (see intake.py).
    await intake.lock_intake(conn, tenant, edition)
    ed = await access.edition_of(rt, conn, tenant, edition)
    init = access.initiative_part(ed, None)
    part, council = access.selection_of(ed, init.id)
    chair_or_secretariat(cmd.caller, council)
    now = uow.now()
    # the council's deadline in force: the official one, or a later one the secretariat granted it
    dl = part.deadline_instant(ed.tz)
    extended = await intake.extension_of(conn, tenant, edition, part.id, part.assignees.council or "")
    if extended is not None and extended > dl:
        dl = extended
    if now >= dl + part.grace_delta:
        raise DomainError(
            Refusal.CONFLICT,
            f"The selection deadline has passed ({deadline_label_en(dl)}).",
            f"Đã quá hạn xét chọn ({deadline_label_vi(dl)}).",
            code="deadline_passed",
        )
    if await _decided(conn, tenant, edition, part.id):
        raise decided()
    _, _, rows = await ranking_rows(rt, conn, tenant, edition)
    chosen = list(dict.fromkeys(cmd.selected))
    _check_selection(chosen, {r["submission_id"]: r for r in rows}, part.minimum_selected)
    s = models.selections
    t = models.submissions
    for r in rows:
        sid = r["submission_id"]
        outcome = "selected" if sid in chosen else "not_selected"
        await conn.execute(
            s.insert().values(
                tenant=tenant,
                edition=edition,
                part=part.id,
                submission_id=sid,
                outcome=outcome,
                score=r["score"],
                rank=r["rank"],
                notes=cmd.notes.get(sid) or (cmd.decision_notes if outcome == "selected" else None),
                decided_by=cmd.caller.person_id,
                decided_at=now,
            )
        )
        if outcome != "selected":
            continue
        full = (await conn.execute(sa.select(t.c.body).where(t.c.id == sid))).scalar_one()
        await uow.emit(
            "initiative.selected",
            {
                "submission_id": sid,
                "part": part.id,
                "initiative_part": init.id,
                "council_id": part.assignees.council,
                "unit_id": r["unit_id"],
                "authors": [
                    {"person_id": a.get("person_id"), "name": a["name"], "share": a["share"]}
                    for a in domain.counted_authors(full["authors"])
                ],
                "score": r["score"],
                "rank": r["rank"],
                "at": now.astimezone(VN),
                "destination": part.destination,
            },
            tenant=tenant,
            edition=edition,
            subject=sid,
            time=now,
            event_id=deterministic_id("initiative.selected", tenant, edition, part.id, sid),
        )
    return await _outcomes_in(conn, tenant, edition)


def _check_selection(chosen: list[str], in_review: dict[str, dict[str, Any]], minimum: int) -> None:
    errors = []
    if len(chosen) < minimum:
        errors.append(
            field_error(
                "selected",
                f"Select at least {minimum} initiative(s).",
                f"Phải chọn ít nhất {minimum} sáng kiến.",
                "minimum_selected",
            )
        )
    for i, sid in enumerate(chosen):
        if sid not in in_review:
            errors.append(
                field_error(
                    f"selected[{i}]",
                    "Not an initiative in review.",
                    "Không phải sáng kiến đang được xét.",
                    "not_in_review",
                )
            )
        elif in_review[sid]["sheets"] == 0:
            errors.append(
                field_error(f"selected[{i}]", "Not scored yet.", "Sáng kiến chưa được chấm.", "not_scored")
            )
    if errors:
        raise DomainError(
            Refusal.INVALID,
            "Invalid selection.",
            "Quyết định xét chọn không hợp lệ.",
            code="validation",
            errors=errors,
        )


async def outcomes(rt: Runtime, tenant: str, edition: str) -> dict[str, Any]:
    """The council's decision as recorded: ``decided`` and every initiative's outcome, by rank."""
    async with rt.engine.connect() as conn:
        return await _outcomes_in(conn, tenant, edition)


async def _outcomes_in(conn: AsyncConnection, tenant: str, edition: str) -> dict[str, Any]:
    s = models.selections
    rows = (
        (
            await conn.execute(
                sa.select(s)
                .where(s.c.tenant == tenant, s.c.edition == edition)
                .order_by(s.c.rank, s.c.submission_id)
            )
        )
        .mappings()
        .all()
    )
    return {
        "decided": bool(rows),
        "outcomes": [
            {
                "submission_id": r["submission_id"],
                "outcome": r["outcome"],
                "score": r["score"],
                "rank": r["rank"],
                "notes": r["notes"],
                "decided_by": r["decided_by"],
                "decided_at": r["decided_at"].astimezone(VN).isoformat(),
            }
            for r in rows
        ],
    }
