"""The reward rules of one edition version, and what a fact is priced at under them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.rewards.domain.facts import DEFAULT_POINTS, RECEIVED, SHORT_KIND, ParticipantKind
from shared.reward_rules import EARLIEST_FULFILMENT, PER_PERSON_PER_PART, PER_UNIT_PER_PART, rule_keys


@dataclass(frozen=True)
class Rules:
    """The reward rules of one edition version (``rewards`` of ``edition.published``)."""

    edition_version: int = 1
    rules_version: int = 1
    points: Mapping[str, int] = field(default_factory=dict)
    deduct: int | None = None  # deadline_missed: {deduct: N}; None = a flag
    caps: Mapping[str, int] = field(default_factory=dict)
    eligibility: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tie_breakers: tuple[str, ...] = (EARLIEST_FULFILMENT,)
    author_shares: bool = False  # split an initiative's points by the authors' contribution percentages

    @classmethod
    def from_document(cls, rewards: Mapping[str, Any], edition_version: int = 1) -> Rules:
        """From the ``rewards`` mapping (already checked by ``shared.reward_rules.check_rewards``)."""
        missed = rewards.get("deadline_missed", "flag")
        deduct = int(missed["deduct"]) if isinstance(missed, Mapping) else None
        return cls(
            edition_version=edition_version,
            rules_version=int(rewards.get("rules_version", 1)),
            points=dict(rewards.get("points") or {}),
            deduct=deduct,
            caps=dict(rewards.get("caps") or {}),
            eligibility={k: tuple(v) for k, v in (rewards.get("eligibility") or {}).items()},
            tie_breakers=tuple(rewards.get("tie_breakers") or (EARLIEST_FULFILMENT,)),
            author_shares=bool(rewards.get("author_shares", False)),
        )

    def cap(self, kind: ParticipantKind) -> int | None:
        return self.caps.get(PER_PERSON_PER_PART if kind == "person" else PER_UNIT_PER_PART)


def points_for(points: Mapping[str, int] | None, part: str, kind: str) -> tuple[str, int]:
    """(rule, points) of a receipt: ``submission.received/<part id>``, else ``…/<kind>`` (``experience`` for an
    experience report), else 1 point when no rules are known at all (0 when the rules leave it out)."""
    candidates = rule_keys(RECEIVED, part, SHORT_KIND.get(kind, kind), kind)[:-1]
    if points is None:
        return candidates[0], DEFAULT_POINTS
    for rule in candidates:
        if rule in points:
            return rule, points[rule]
    return candidates[1], 0


def priced(
    points: Mapping[str, int] | None, fact_type: str, part: str | None, *forms: str
) -> tuple[str, int]:
    """(rule, points) of any other fact: ``<type>/<part id>``, else ``<type>/<form>``, else ``<type>``; 0 when
    the rules price none of them (the rule named is then the bare type)."""
    keys = rule_keys(fact_type, part, *forms)
    for rule in keys:
        if rule in (points or {}):
            return rule, (points or {})[rule]
    return keys[-1], 0
