"""What the exports hold: every submission the caller may see, every field (Vietnamese headers and values), and
the score table per initiative per member — as queries (no unit of work: a connection of their own). The
routers, which write them as XLSX or CSV, are ``services/submissions/api/exports.py``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.submissions import models
from services.submissions.usecases import access
from services.submissions.usecases.review import ranking_rows
from shared.clock import VN
from shared.documents import format_date_vn, format_datetime_vn
from shared.events.envelope import Envelope

KIND_VI = {"initiative": "Sáng kiến", "experience_report": "Trải nghiệm dịch vụ công trực tuyến"}
STATUS_VI = {
    "draft": "Bản nháp",
    "submitted": "Đã tiếp nhận",
    "withdrawn": "Đã rút",
    "rejected": "Không hợp lệ",
}
LEVEL_VI = {"toan_trinh": "Toàn trình", "mot_phan": "Một phần"}
BENEFITS_VI = {"actual": "Thực tế", "expected": "Dự kiến"}

SUBMISSION_COLUMNS: list[tuple[str, str]] = [
    ("receipt_number", "Số biên nhận"),
    ("kind", "Loại hồ sơ"),
    ("part", "Phần thi"),
    ("status", "Trạng thái"),
    ("revision", "Lần chỉnh sửa"),
    ("received_at", "Thời điểm tiếp nhận (+07:00)"),
    ("author", "Người nộp"),
    ("unit", "Đơn vị (tại thời điểm nộp)"),
    ("unions", "Đoàn thể (tại thời điểm nộp)"),
    ("title", "Tên sáng kiến"),
    ("authors", "Tác giả (tỷ lệ đóng góp)"),
    ("field_of_application", "Lĩnh vực áp dụng"),
    ("first_applied_on", "Ngày áp dụng lần đầu"),
    ("existing_solution", "Giải pháp đã biết"),
    ("existing_weaknesses", "Ưu, nhược điểm của giải pháp đã biết"),
    ("new_solution", "Nội dung giải pháp mới"),
    ("novelty", "Tính mới"),
    ("applicability", "Khả năng áp dụng, phạm vi"),
    ("benefits", "Lợi ích"),
    ("benefits_kind", "Loại lợi ích"),
    ("confidential_information", "Thông tin bảo mật"),
    ("attachments", "Tệp đính kèm (SHA-256)"),
    ("procedures", "Thủ tục hành chính (mã quốc gia)"),
    ("experiences", "Chi tiết trải nghiệm"),
    ("submission_id", "Mã hồ sơ"),
]


async def _names(rt: Any, conn: Any, tenant: str, ids: set[str]) -> dict[str, str]:
    out = {}
    for pid in ids:
        p = await rt.copies.person(conn, tenant, pid, rt.now())
        out[pid] = p.name if p else pid
    return out


async def _union_names(rt: Any, conn: Any, tenant: str, ids: set[str]) -> dict[str, str]:
    """Union (Đoàn thể) names from the directory facts submissions has kept (its inbox holds every
    ``directory.unit.changed``; a union travels in that type): the latest version of each wins."""
    if not ids:
        return {}
    t = rt.backbone.inbox
    out: dict[str, str] = {}
    rows = await conn.execute(
        sa.select(t.c.envelope)
        .where(t.c.event_type == "directory.unit.changed", t.c.tenant == tenant, t.c.subject.in_(sorted(ids)))
        .order_by(t.c.sequence)
    )
    for (raw,) in rows:
        union = Envelope.from_json(raw).data.get("union") or {}
        if union.get("id") in ids and union.get("name"):
            out[union["id"]] = union["name"]
    return out


async def submission_rows(rt: Any, caller: Any, tenant: str, edition: str) -> list[dict[str, Any]]:
    t, a = models.submissions, models.attachments
    async with rt.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(t)
                    .where(t.c.tenant == tenant, t.c.edition == edition)
                    .order_by(t.c.kind, t.c.received_at)
                )
            )
            .mappings()
            .all()
        )
        visible = [r for r in rows if await access.may_see(rt, conn, caller, r)]
        names = await _names(rt, conn, tenant, {r["author_id"] for r in visible})
        files: dict[str, list[str]] = {}
        if visible:
            for f in (
                await conn.execute(sa.select(a).where(a.c.submission_id.in_([r["id"] for r in visible])))
            ).mappings():
                files.setdefault(f["submission_id"], []).append(f"{f['filename']} ({f['sha256']})")
        edition_doc = await rt.copies.edition(conn, tenant, edition)
        part_titles = {p.id: p.title or p.id for p in edition_doc.parts} if edition_doc else {}
        # An experience report records its author's unions at receipt; for an initiative, the submitter's
        # unions on the receipt date come from the directory copy.
        unions_of: dict[str, list[str]] = {}
        for r in visible:
            recorded = (r["body"] or {}).get("unions")
            if recorded is None and r["received_at"] is not None:
                author = await rt.copies.person(conn, tenant, r["author_id"], r["received_at"])
                recorded = list(author.unions) if author else []
            unions_of[r["id"]] = list(recorded or [])
        union_names = await _union_names(rt, conn, tenant, {u for us in unions_of.values() for u in us})
        unit_names = {}
        for r in visible:
            u = await rt.copies.unit(conn, tenant, r["unit_id"], r["received_at"] or rt.now())
            unit_names[r["unit_id"]] = u.name if u else r["unit_id"]
    out = []
    for r in visible:
        b = r["body"] or {}
        out.append(
            {
                "submission_id": r["id"],
                "receipt_number": r["receipt_number"] or "",
                "kind": KIND_VI.get(r["kind"], r["kind"]),
                "part": part_titles.get(r["part"], r["part"]),
                "status": STATUS_VI.get(r["status"], r["status"]),
                "revision": r["revision"],
                "received_at": format_datetime_vn(r["received_at"]) if r["received_at"] else "",
                "author": names.get(r["author_id"], r["author_id"]),
                "unit": unit_names.get(r["unit_id"], r["unit_id"]),
                "unions": ", ".join(union_names.get(u, u) for u in unions_of[r["id"]]),
                "title": b.get("title", ""),
                "authors": "; ".join(
                    f"{x['name']}{'' if x.get('person_id') else ' (ngoài đơn vị)'} — {x['share']:g}%"
                    for x in b.get("authors", [])
                ),
                "field_of_application": b.get("field_of_application", ""),
                "first_applied_on": format_date_vn(_date(b["first_applied_on"]))
                if b.get("first_applied_on")
                else "",
                "existing_solution": b.get("existing_solution", ""),
                "existing_weaknesses": b.get("existing_weaknesses", ""),
                "new_solution": b.get("new_solution", ""),
                "novelty": b.get("novelty", ""),
                "applicability": b.get("applicability", ""),
                "benefits": b.get("benefits", ""),
                "benefits_kind": BENEFITS_VI.get(b.get("benefits_kind", ""), ""),
                "confidential_information": b.get("confidential_information") or "",
                "attachments": "; ".join(files.get(r["id"], [])),
                "procedures": ", ".join(b.get("national_codes", [])),
                "experiences": "\n".join(
                    f"{p['code']} — {format_date_vn(_date(p['used_on']))} — {p.get('portal', '')} — "
                    f"{LEVEL_VI.get(p['level'], p['level'])} — {p['rating']}/5 — {p['narrative']}"
                    + (f" — Vướng mắc: {p['problems']}" if p.get("problems") else "")
                    for p in b.get("procedures", [])
                ),
            }
        )
    return out


def _date(s: str) -> Any:
    from datetime import date

    return date.fromisoformat(s)


async def score_rows(
    rt: Any, caller: Any, tenant: str, edition: str
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    async with rt.engine.connect() as conn:
        part, council, rows = await ranking_rows(rt, conn, tenant, edition)
        full = access.is_overseer(caller) or caller.person_id == council.chair
        if not full and caller.person_id not in council.members:
            raise access.forbidden("Council and secretariat only.", "Chỉ Hội đồng và Thường trực được xem.")
        members = {m for r in rows for m in r["_scores"]}
        names = await _names(rt, conn, tenant, members)
    columns = [
        ("receipt_number", "Số biên nhận"),
        ("title", "Tên sáng kiến"),
        ("unit", "Đơn vị"),
        ("member", "Thành viên Hội đồng"),
        *[(f"c:{c.id}", f"{c.title} (tối đa {c.max})") for c in part.rubric.criteria],
        ("total", "Tổng điểm"),
        ("comment", "Nhận xét"),
        ("scored_at", "Thời điểm chấm (+07:00)"),
        (
            "aggregate",
            "Điểm tổng hợp (" + ("trung bình" if part.rubric.aggregate == "mean" else "trung vị") + ")",
        ),
        ("rank", "Xếp hạng"),
    ]
    out = []
    for r in rows:
        for m, sh in sorted(r["_scores"].items()):
            if not full and m != caller.person_id:
                continue  # a member sees their own sheets only
            out.append(
                {
                    "receipt_number": r["receipt_number"],
                    "title": r["title"],
                    "unit": r["unit_name"] or r["unit_id"],
                    "member": names.get(m, m),
                    **{f"c:{k}": float(v) for k, v in sh["scores"].items()},
                    "total": sh["total"],
                    "comment": sh["comment"] or "",
                    "scored_at": format_datetime_vn(sh["scored_at"].astimezone(VN)),
                    "aggregate": r["score"] if full else "",
                    "rank": r["rank"] if full else "",
                }
            )
    return columns, out
