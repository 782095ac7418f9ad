"""The ledger: what a submission or an assignment earns or costs each participant, one entry per fact and rule,
with its reasons in Vietnamese and English. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.rewards.domain.facts import (
    ASSIGNMENT_SUBJECT_TYPES,
    FULFILLED,
    KIND_EN,
    KIND_VI,
    MISSED,
    PROGRESS,
    SELECTED,
    SUBMISSION_SUBJECT_TYPES,
    TARGET_MISSED,
    TARGET_REACHED,
    ParticipantKind,
)
from services.rewards.domain.folds import Assignment, AuthorShare, Submission
from services.rewards.domain.rules import Rules, points_for, priced
from shared.documents import format_datetime_vn


@dataclass(frozen=True)
class LedgerEntry:
    """One achievement (or miss) of one participant, earned by one fact (``event_id``) under one rule.

    ``submission_id`` is the subject the fact is about: a submission, or an assignment for misses, fulfilments
    and the 90-day campaign.
    """

    submission_id: str
    participant_kind: ParticipantKind
    participant_id: str
    event_id: str
    rule: str
    points: float
    time: datetime
    edition: str
    part: str
    kind: str
    reason_vi: str
    reason_en: str


def _round(x: float) -> float:
    return round(x, 2)


def ledger_entries(
    s: Submission,
    *,
    points: Mapping[str, int] | None = None,
    part_title: str | None = None,
    author_shares: bool = False,
    selection_title: str | None = None,
) -> list[LedgerEntry]:
    """What a submission earns while it stands: its receipt (for each author; for the unit at receipt) and its
    selection by the council. Entries worth 0 points are not entries."""
    out: list[LedgerEntry] = []
    if s.withdrawn or s.rejected:
        return out
    edition = s.edition or ""

    def entry(
        kind: ParticipantKind,
        pid: str,
        event_id: str,
        rule: str,
        pts: float,
        at: datetime,
        part: str,
        vi: str,
        en: str,
    ) -> None:
        if pts:
            out.append(
                LedgerEntry(
                    s.submission_id,
                    kind,
                    pid,
                    event_id,
                    rule,
                    _round(pts),
                    at,
                    edition,
                    part,
                    s.kind or "initiative",
                    vi,
                    en,
                )
            )

    def people(authors: tuple[AuthorShare, ...], pts: float) -> list[tuple[str, float, str]]:
        named = [a for a in authors if a.person_id]
        if not named:
            return [(s.author_id, pts, "")] if s.author_id else []
        if author_shares:
            return [(str(a.person_id), pts * a.share / 100, f" ({a.share:g}%)") for a in named]
        return [(str(a.person_id), pts, "") for a in named]

    if s.active:
        assert s.received_event_id and s.received_at and s.kind and s.part and s.unit_id
        rule, pts = points_for(points, s.part, s.kind)
        when = format_datetime_vn(s.received_at)
        what_vi, what_en = KIND_VI.get(s.kind, s.kind), KIND_EN.get(s.kind, s.kind)
        where = f" «{part_title or s.part}»"
        receipt = f" số {s.receipt_number}" if s.receipt_number else ""
        receipt_en = f" no. {s.receipt_number}" if s.receipt_number else ""
        authors = s.authors if s.kind == "initiative" else ()
        for pid, p, share in people(authors, pts):
            entry(
                "person",
                pid,
                s.received_event_id,
                rule,
                p,
                s.received_at,
                s.part,
                f"Đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}{share}",
                f"Submitted {what_en} (part{where}), receipt{receipt_en} at {when}{share}",
            )
        entry(
            "unit",
            s.unit_id,
            s.received_event_id,
            rule,
            pts,
            s.received_at,
            s.part,
            f"Thành viên của đơn vị đã nộp {what_vi} (phần thi{where}), biên nhận{receipt} lúc {when}",
            f"A member of the unit submitted {what_en} (part{where}), receipt{receipt_en} at {when}",
        )
    if s.selected and s.status != "withdrawn":
        assert s.selected_event_id and s.selected_at
        part = s.selection_part or "selection"
        selected_rule, pts = priced(points, SELECTED, s.selection_part)
        when = format_datetime_vn(s.selected_at)
        name = f" «{s.title}»" if s.title else ""
        authors = s.selection_authors or s.authors
        # the level comes from the edition (its selection part's destination), never assumed
        sent_vi = f" gửi dự thi {s.selection_destination}" if s.selection_destination else ""
        sent_en = f" to go on to «{s.selection_destination}»" if s.selection_destination else ""
        for pid, p, share in people(authors, pts):
            entry(
                "person",
                pid,
                s.selected_event_id,
                selected_rule,
                p,
                s.selected_at,
                part,
                f"Là tác giả sáng kiến{name} được Hội đồng chọn{sent_vi} lúc {when}{share}",
                f"Author of the initiative{name} selected by the council{sent_en} at {when}{share}",
            )
        unit = s.selection_unit_id or s.unit_id
        if unit:
            entry(
                "unit",
                unit,
                s.selected_event_id,
                selected_rule,
                pts,
                s.selected_at,
                part,
                f"Sáng kiến{name} của đơn vị được Hội đồng chọn{sent_vi} lúc {when}",
                f"The unit's initiative{name} was selected by the council{sent_en} at {when}",
            )
    return out


def assignment_entries(
    a: Assignment, rules: Rules | None, *, part_title: str | None = None
) -> list[LedgerEntry]:
    """What an assignment earns or costs: its fulfilment (if the rules price it), its standing miss (once),
    and the 90-day campaign's result. A council's assignment is nobody's achievement."""
    if a.assignee_kind not in ("person", "unit") or not a.assignee_id:
        return []
    kind: ParticipantKind = "person" if a.assignee_kind == "person" else "unit"
    points = rules.points if rules is not None else {}
    part = a.part or ""
    title = f" «{part_title or part}»"
    out: list[LedgerEntry] = []

    def entry(event_id: str, rule: str, pts: float, at: datetime, vi: str, en: str) -> None:
        out.append(
            LedgerEntry(
                a.assignment_id,
                kind,
                a.assignee_id or "",
                event_id,
                rule,
                _round(pts),
                at,
                a.edition or "",
                part,
                a.part_kind or "",
                vi,
                en,
            )
        )

    if a.fulfilment is not None and a.part_kind:
        rule, fulfilled_pts = priced(points, FULFILLED, a.part, a.part_kind)
        if fulfilled_pts:
            when = format_datetime_vn(a.fulfilment.at)
            late_vi, late_en = ("", "") if a.fulfilment.on_time else (" (trễ hạn)", " (late)")
            entry(
                a.fulfilment.event_id,
                rule,
                fulfilled_pts,
                a.fulfilment.at,
                f"Hoàn thành phần thi{title} lúc {when}{late_vi}",
                f"Fulfilled the part{title} at {when}{late_en}",
            )
    miss = a.standing_miss
    if miss is not None:
        missed_rule, missed_pts = priced(points, MISSED, a.part)
        pts: float = -rules.deduct if rules is not None and rules.deduct is not None else missed_pts
        when = format_datetime_vn(miss.deadline)
        effect_vi = f", trừ {-pts:g} điểm" if pts < 0 else " (ghi nhận, không trừ điểm)"
        effect_en = f", {-pts:g} points deducted" if pts < 0 else " (flagged, no deduction)"
        entry(
            miss.event_id,
            missed_rule,
            pts,
            miss.deadline,
            f"Không hoàn thành phần thi{title} trước hạn {when}{effect_vi}",
            f"Did not fulfil the part{title} by its deadline {when}{effect_en}",
        )
    if a.target_event_id is not None and a.target_at is not None:
        rule, target_pts = priced(points, TARGET_REACHED if a.target_reached else TARGET_MISSED, a.part)
        if target_pts:
            when = format_datetime_vn(a.target_at)
            if a.target_reached:
                vi, en = f"Đạt chỉ tiêu{title} lúc {when}", f"Reached the targets{title} at {when}"
            else:
                unmet = ", ".join(a.target_unmet)
                vi = f"Không đạt chỉ tiêu{title} ({unmet}) lúc {when}"
                en = f"Missed the targets{title} ({unmet}) at {when}"
            entry(a.target_event_id, rule, target_pts, a.target_at, vi, en)
    progress_rule, progress_pts = priced(points, PROGRESS, a.part)
    if a.first_progress_event_id and a.first_progress_at and progress_pts:
        when = format_datetime_vn(a.first_progress_at)
        entry(
            a.first_progress_event_id,
            progress_rule,
            progress_pts,
            a.first_progress_at,
            f"Báo cáo tiến độ{title} lúc {when}",
            f"Reported progress{title} at {when}",
        )
    return out


def subject_kind(event_type: str) -> Literal["submission", "assignment"] | None:
    if event_type in SUBMISSION_SUBJECT_TYPES:
        return "submission"
    if event_type in ASSIGNMENT_SUBJECT_TYPES:
        return "assignment"
    return None
