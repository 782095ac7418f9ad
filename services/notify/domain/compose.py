"""What each message says: the template context for one trigger, one recipient, one event (pure).

Every instant is formatted for Vietnamese readers (``dd/mm/yyyy HH:MM:SS (+07:00)``), dates ``dd/mm/yyyy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notify import domain
from services.notify.domain import People, Trigger
from shared.documents import (
    Edition,
    Person,
    deadline_label_en,
    deadline_label_vi,
    format_datetime_vn,
    last_day_vn,
    time_left_en,
    time_left_vi,
)
from shared.events.catalogue import REWARD_TITLES, SubmissionReceived

ROLE_VI = {"unit_head": "Thủ trưởng đơn vị", "union_secretary": "Bí thư Chi đoàn / Chủ tịch Công đoàn cơ sở"}


@dataclass(frozen=True)
class Planned:
    """One message to one person: the template and its context."""

    person: Person
    template: str
    context: dict[str, Any]
    urgent: bool


def _dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def _vn(value: Any) -> str:
    dt = _dt(value)
    return format_datetime_vn(dt) if dt is not None else ""


def _deadline(prefix: str, value: Any) -> dict[str, str]:
    """A deadline as every template shows it: ``<prefix>_label_vi`` ('hết ngày 25/10/2023 (+07:00)'), its
    English twin, the last day (``<prefix>_date_vn``) and the exclusive instant (``<prefix>_vn``)."""
    dt = _dt(value)
    if dt is None:
        return {
            f"{prefix}_vn": "",
            f"{prefix}_date_vn": "",
            f"{prefix}_label_vi": "",
            f"{prefix}_label_en": "",
        }
    return {
        f"{prefix}_vn": format_datetime_vn(dt),
        f"{prefix}_date_vn": last_day_vn(dt),
        f"{prefix}_label_vi": deadline_label_vi(dt),
        f"{prefix}_label_en": deadline_label_en(dt),
    }


def _part_title(edition: Edition | None, part: str | None) -> str:
    if edition is not None and part:
        try:
            return edition.part(part).title or part
        except KeyError:
            return part
    return part or ""


def _part_kind(edition: Edition | None, part: str | None) -> str | None:
    if edition is not None and part:
        try:
            return edition.part(part).kind
        except KeyError:
            return None
    return None


def base(
    edition: Edition | None, edition_name: str | None, person: Person, who: People | None = None
) -> dict[str, Any]:
    name = edition_name or (edition.edition if edition else "")
    return {
        **(who.signature() if who is not None else {}),
        "person_name": person.name,
        "edition": name,
        "edition_title": edition.title if edition is not None else f"Hội thi Cải cách hành chính {name}",
    }


def plan(
    event_type: str,
    data: dict[str, Any],
    *,
    edition: Edition | None,
    edition_name: str | None,
    who: People,
    event_time: datetime,
    scored_count: int = 0,
    now: datetime | None = None,
) -> list[Planned]:
    """Every message one event causes, per ``domain.TRIGGERS``: one per (recipient, template).

    ``now`` is when the message is written (the deployment's clock): the time left before a deadline is
    counted from it, not from the reminder's due time (``event_time``), which a catch-up may have left behind.
    """
    out: list[Planned] = []
    seen: set[tuple[str, str]] = set()
    if event_type == "reward.priority.changed" and domain.eligibility_change(data) == ([], []):
        return out  # a move in rank or points only: nothing to tell

    def add(person: Person, trigger: Trigger, ctx: dict[str, Any]) -> None:
        if (person.id, trigger.template) in seen:
            return
        seen.add((person.id, trigger.template))
        out.append(
            Planned(
                person, trigger.template, {**base(edition, edition_name, person, who), **ctx}, trigger.urgent
            )
        )

    for trigger in domain.triggers_of(event_type):
        common = _common(event_type, data, edition, who, now or event_time, scored_count)
        if "mobilisers_of_missed" in trigger.audiences:
            for s in domain.summaries(data.get("missed_by_unit") or {}, who):
                units = all(who.person(a) is None for a in _assignees(data))
                add(
                    s.recipient,
                    trigger,
                    {
                        **common,
                        "missed": list(s.missed),
                        "count": len(s.missed),
                        "units": units,
                        "role_vi": ", ".join(ROLE_VI.get(r, r) for r in s.roles),
                    },
                )
            continue
        for audience in trigger.audiences:
            for person in domain.resolve(audience, data, edition, who):
                add(person, trigger, common)
    return out


def _assignees(data: dict[str, Any]) -> list[str]:
    return [a for ids in (data.get("missed_by_unit") or {}).values() for a in ids]


def _common(
    event_type: str,
    data: dict[str, Any],
    edition: Edition | None,
    who: People,
    now: datetime,
    scored_count: int,
) -> dict[str, Any]:
    part = data.get("part")
    ctx: dict[str, Any] = {
        "part": part,
        "part_title": _part_title(edition, part),
        "part_kind": _part_kind(edition, part),
    }
    if event_type == "submission.received":
        receipt = domain.receipt_of(
            SubmissionReceived.model_validate(data),
            edition=edition.edition if edition else "",
            document=edition,
            person_name=(p.name if (p := who.person(data["author_id"])) else None),
            unit_name=(u.name if (u := who.units.get(data["unit_id"])) else None),
        )
        return {**ctx, **receipt.context()}
    if event_type in ("deadline.approaching", "deadline.missed"):
        deadline = _dt(data.get("deadline"))
        return {
            **ctx,
            "assignee_name": who.name_of(data.get("assignee_id", "")),
            **_deadline("deadline", deadline),
            "days_left": max(0, (deadline - now).days) if deadline else 0,
            "time_left_vi": time_left_vi(deadline, now) if deadline else "",
            "time_left_en": time_left_en(deadline, now) if deadline else "",
        }
    if event_type == "deadline.passed":
        by_unit = [
            {"name": who.name_of(unit_id), "missed": sorted(who.name_of(a) for a in ids)}
            for unit_id, ids in sorted((data.get("missed_by_unit") or {}).items())
            if ids
        ]
        return {
            **ctx,
            **_deadline("deadline", data.get("deadline")),
            "assigned": data.get("assigned", 0),
            "fulfilled": data.get("fulfilled", 0),
            "missed_count": sum(len(u["missed"]) for u in by_unit),
            "by_unit": by_unit,
        }
    if event_type == "deadline.extended":
        return {
            **ctx,
            "assignee_name": who.name_of(data.get("assignee_id", "")),
            **_deadline("previous_deadline", data.get("previous_deadline")),
            **_deadline("new_deadline", data.get("new_deadline")),
            "reason": data.get("reason", ""),
        }
    if event_type == "initiative.scored":
        council = edition.councils.get(data.get("council_id", "")) if edition else None
        return {
            **ctx,
            "submission_id": data.get("submission_id"),
            "member_name": who.name_of(data.get("member_id", "")),
            "total": data.get("total"),
            "at_vn": _vn(data.get("at")),
            "scored": scored_count,
            "council_size": len(council.members) if council else None,
        }
    if event_type == "initiative.selected":
        selection = None
        if edition is not None and part:
            selection = next((p for p in edition.parts if p.id == part), None)
        council_id = data.get("council_id") or ""
        council = edition.councils.get(council_id) if edition is not None else None
        destination = getattr(selection, "destination", None) or data.get("destination")
        return {
            **ctx,
            # the level and the council's name come from the edition, never from the template
            "destination": destination,
            "council_name": (council.name if council is not None and council.name else None)
            or "Hội đồng xét chọn sáng kiến",
            "submission_id": data.get("submission_id"),
            "unit_name": who.name_of(data.get("unit_id", "")),
            "authors": [a.get("name") for a in data.get("authors") or []],
            "score": data.get("score"),
            "rank": data.get("rank"),
            "at_vn": _vn(data.get("at")),
        }
    if event_type == "submission.rejected":
        return {
            **ctx,
            "submission_id": data.get("submission_id"),
            "author_name": who.name_of(data.get("author_id", "")),
            "reason": data.get("reason", ""),
            "at_vn": _vn(data.get("at")),
        }
    if event_type == "reward.priority.changed":
        gained, lost = domain.eligibility_change(data)
        pid = str(data.get("participant_id", ""))
        return {
            **ctx,
            "participant_name": who.name_of(pid),
            "participant_is_unit": data.get("participant_kind") == "unit",
            "gained_vi": [REWARD_TITLES.get(k, (k, k))[0] for k in gained],
            "lost_vi": [REWARD_TITLES.get(k, (k, k))[0] for k in lost],
            "gained_en": [REWARD_TITLES.get(k, (k, k))[1] for k in gained],
            "lost_en": [REWARD_TITLES.get(k, (k, k))[1] for k in lost],
            "rank": data.get("rank"),
            "points": data.get("points"),
            "reasons_vi": [r.get("vi", "") for r in data.get("reasons") or [] if isinstance(r, dict)],
            "reasons_en": [r.get("en", "") for r in data.get("reasons") or [] if isinstance(r, dict)],
        }
    if event_type.startswith("onlineservice."):
        return {
            **ctx,
            "unit_name": who.name_of(data.get("unit_id", "")),
            "figures": sorted((data.get("figures") or {}).items()),
            "unmet": data.get("unmet") or [],
            "at_vn": _vn(data.get("at")),
            "period_start_vn": _vn(data.get("period_start")),
            "period_end_vn": _vn(data.get("period_end")),
        }
    return ctx
