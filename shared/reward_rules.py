"""The one check of an edition's reward rules (``rewards`` of the edition document).

``hoithi edition validate``, campaign before it publishes an edition, and rewards when ``edition.published``
arrives all call ``check_rewards`` (or ``edition_rule_errors``), so rules that rewards would refuse are refused
when the edition is validated, never silently later.

A ``rewards.points`` key names a fact: an event type (``initiative.selected``), or an event type qualified by
what it is about — the catalogue's kind forms (``submission.received/experience``,
``assignment.fulfilled/initiative``, ``shared.events.catalogue.REWARD_FACT_KINDS``) or one of the edition's own
part ids (``submission.received/<part id>``), which takes precedence over the kind form. A qualifier that is
neither is refused, naming the field.

Pure: no framework, database or broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.documents import Edition, Rewards
from shared.events.catalogue import PART_KINDS, REWARD_FACT_KINDS, REWARD_TITLES

PER_PERSON_PER_PART = "per_person_per_part"
PER_UNIT_PER_PART = "per_unit_per_part"
CAPS: tuple[str, ...] = (PER_PERSON_PER_PART, PER_UNIT_PER_PART)

# Eligibility (danh hiệu thi đua): the title keys a rules document may name, and the conditions behind them.
AUTHOR_OF_SELECTED = "author_of_selected_initiative"
FULFILLED_ANY = "fulfilled_any_part"
UNIT_FULFILLED_ALL = "unit_fulfilled_all_its_parts"
CONDITIONS: tuple[str, ...] = (AUTHOR_OF_SELECTED, FULFILLED_ANY, UNIT_FULFILLED_ALL)
TITLES: dict[str, tuple[str, str]] = REWARD_TITLES  # one list, in the catalogue (notify names them too)
EARLIEST_FULFILMENT = "earliest_fulfilment"
FEWER_MISSED = "fewer_missed_deadlines"
TIE_BREAKERS: tuple[str, ...] = (EARLIEST_FULFILMENT, FEWER_MISSED)

# The fact types a points key may qualify with a part id, and the kinds of part each can be about.
PART_SCOPED: dict[str, tuple[str, ...]] = {
    "submission.received": ("initiative", "experience_report"),
    "initiative.selected": ("selection",),
    "assignment.fulfilled": PART_KINDS,
    "deadline.missed": PART_KINDS,
    "onlineservice.progress.reported": ("online_services_campaign",),
    "onlineservice.target.reached": ("online_services_campaign",),
    "onlineservice.target.missed": ("online_services_campaign",),
}
KIND_VI: dict[str, str] = {
    "initiative": "phần thi sáng kiến",
    "experience_report": "phần thi trải nghiệm dịch vụ công trực tuyến",
    "selection": "phần xét chọn của hội đồng",
    "online_services_campaign": "chiến dịch 90 ngày",
}


@dataclass(frozen=True)
class RuleError:
    """One problem of a rules document, naming the field (``rewards.points.<fact>``)."""

    field: str
    en: str
    vi: str


def rule_keys(fact_type: str, part: str | None, *forms: str) -> list[str]:
    """The points keys that price a fact, most specific first: ``<type>/<part id>``, ``<type>/<form>`` for
    each kind form given, then ``<type>`` alone."""
    keys = [f"{fact_type}/{part}"] if part else []
    keys += [f"{fact_type}/{f}" for f in forms if f]
    keys.append(fact_type)
    return list(dict.fromkeys(keys))


def _points_errors(
    points: Mapping[str, Any], parts: Mapping[str, str] | None, fact_kinds: Sequence[str]
) -> list[RuleError]:
    errors: list[RuleError] = []
    part_list = ", ".join(parts) if parts else ""
    for key, value in points.items():
        where = f"rewards.points.{key}"
        fact_type, _, qualifier = str(key).partition("/")
        if key in fact_kinds:
            pass
        elif qualifier and fact_type in PART_SCOPED and parts is not None and qualifier in parts:
            kind = parts[qualifier]
            if kind not in PART_SCOPED[fact_type]:
                allowed = ", ".join(PART_SCOPED[fact_type])
                allowed_vi = ", ".join(KIND_VI.get(k, k) for k in PART_SCOPED[fact_type])
                errors.append(
                    RuleError(
                        where,
                        f"part {qualifier!r} is a {kind} part: {fact_type} is about parts of kind {allowed}",
                        f"phần thi {qualifier!r} là {KIND_VI.get(kind, kind)}: sự kiện {fact_type} chỉ áp dụng "
                        f"cho {allowed_vi}",
                    )
                )
        elif qualifier and fact_type in PART_SCOPED:
            known = f"; the edition's parts: {part_list}" if part_list else ""
            known_vi = f"; các phần thi của kỳ hội thi: {part_list}" if part_list else ""
            errors.append(
                RuleError(
                    where,
                    f"unknown part id {qualifier!r}: {fact_type}/<part id> must name a part of this edition"
                    f"{known}",
                    f"mã phần thi {qualifier!r} không có trong kỳ hội thi: {fact_type}/<mã phần thi> phải là "
                    f"một phần thi của kỳ hội thi này{known_vi}",
                )
            )
        else:
            errors.append(
                RuleError(
                    where,
                    f"unknown fact kind {key!r}; allowed: {', '.join(fact_kinds)}, or <fact type>/<part id>",
                    f"loại sự kiện {key!r} không được hỗ trợ; các loại hợp lệ: {', '.join(fact_kinds)}, "
                    "hoặc <loại sự kiện>/<mã phần thi>",
                )
            )
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(RuleError(where, "points must be a whole number", "điểm phải là số nguyên"))
    return errors


def validate_rules(
    rewards: Mapping[str, Any],
    parts: Mapping[str, str] | None = None,
    fact_kinds: Sequence[str] = REWARD_FACT_KINDS,
) -> list[RuleError]:
    """Every problem of the meaning of a ``rewards`` section (empty: valid). ``parts`` maps the edition's part
    ids to their kinds (``None``: no edition known, so no part id is allowed)."""
    errors: list[RuleError] = []
    points = rewards.get("points") or {}
    if not isinstance(points, Mapping):
        errors.append(
            RuleError(
                "rewards.points",
                "must be a mapping of fact kind to points",
                "phải là bảng loại sự kiện → điểm",
            )
        )
        points = {}
    errors += _points_errors(points, parts, fact_kinds)
    caps = rewards.get("caps") or {}
    for name, value in caps.items() if isinstance(caps, Mapping) else []:
        where = f"rewards.caps.{name}"
        if name not in CAPS:
            errors.append(
                RuleError(
                    where,
                    f"unknown cap {name!r}; allowed: {', '.join(CAPS)}",
                    f"giới hạn {name!r} không được hỗ trợ; các giới hạn hợp lệ: {', '.join(CAPS)}",
                )
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(
                RuleError(
                    where,
                    f"a cap must be a whole number ≥ 0, not {value!r}",
                    f"giới hạn phải là số nguyên không âm, không phải {value!r}",
                )
            )
    missed = rewards.get("deadline_missed", "flag")
    if missed != "flag":
        n = missed.get("deduct") if isinstance(missed, Mapping) else None
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            errors.append(
                RuleError(
                    "rewards.deadline_missed",
                    "must be 'flag' or {deduct: N} with N > 0",
                    "phải là 'flag' hoặc {deduct: N} với N > 0",
                )
            )
    eligibility = rewards.get("eligibility") or {}
    for title, conditions in eligibility.items() if isinstance(eligibility, Mapping) else []:
        if title not in TITLES:
            errors.append(
                RuleError(
                    f"rewards.eligibility.{title}",
                    f"unknown title {title!r}; allowed: {', '.join(TITLES)}",
                    f"danh hiệu {title!r} không được hỗ trợ; các danh hiệu hợp lệ: {', '.join(TITLES)}",
                )
            )
        for i, c in enumerate(conditions or []):
            if c not in CONDITIONS:
                errors.append(
                    RuleError(
                        f"rewards.eligibility.{title}[{i}]",
                        f"unknown condition {c!r}; allowed: {', '.join(CONDITIONS)}",
                        f"điều kiện {c!r} không được hỗ trợ; các điều kiện hợp lệ: {', '.join(CONDITIONS)}",
                    )
                )
    for i, t in enumerate(rewards.get("tie_breakers") or []):
        if t not in TIE_BREAKERS:
            errors.append(
                RuleError(
                    f"rewards.tie_breakers[{i}]",
                    f"unknown tie-breaker {t!r}; allowed: {', '.join(TIE_BREAKERS)}",
                    f"tiêu chí xếp hạng khi bằng điểm {t!r} không được hỗ trợ; hợp lệ: {', '.join(TIE_BREAKERS)}",
                )
            )
    return errors


def check_rewards(rewards: Mapping[str, Any], parts: Mapping[str, str] | None = None) -> list[RuleError]:
    """Every problem of a ``rewards`` section: its meaning (``validate_rules``), then its shape (the edition
    document's model) where the meaning check did not already name the field."""
    errors = validate_rules(rewards, parts)
    try:
        Rewards.model_validate(rewards)
    except ValidationError as exc:
        known = {e.field for e in errors}
        for e in exc.errors():
            where = "rewards." + ".".join(str(p) for p in e["loc"])
            if where not in known and not any(k.startswith(where) for k in known):
                errors.append(RuleError(where, e["msg"], "Giá trị không hợp lệ"))
    return errors


def parts_of(document: Mapping[str, Any] | Edition) -> dict[str, str]:
    """Part id → part kind of an edition (a model or its document as plain data)."""
    if isinstance(document, Edition):
        return {p.id: p.kind for p in document.parts}
    return {
        str(p.get("id")): str(p.get("kind"))
        for p in document.get("parts") or []
        if isinstance(p, Mapping) and p.get("id")
    }


def edition_rule_errors(edition: Edition) -> list[RuleError]:
    """The reward-rule problems of an edition: exactly what rewards would refuse when it is published."""
    if edition.rewards is None:
        return []
    rewards = edition.rewards.model_dump(mode="json", by_alias=True)
    return check_rewards(rewards, parts_of(edition))
