"""Rewards rules (khen thưởng): what the kept facts are worth, and the priority list.

Pure: no framework, database or broker. State is folded from the facts kept for one subject (a submission or
an assignment) in ``sequence`` order, gaps allowed, so arrival order never matters: a withdrawal that arrives
before its receipt still leaves the submission withdrawn. "As of" views fold only the facts whose *business*
time is at or before the moment (a miss counts at its deadline, a receipt at its receipt time), never the time
they were published or applied. Business times are aware datetimes; texts shown to people are Vietnamese with
an English twin.

By concept: ``facts`` (the facts folded, their business time), ``rules`` (the reward rules, the price of a
fact), ``folds`` (a submission, an assignment), ``ledger`` (what each earns or costs), ``standings`` (a
participant's standing from per-subject marks), ``ranking`` (the edition's standing, the priority list) and
``versions`` (a subject's standing through business time, for "as of" reads).
Everything is re-exported here: ``from services.rewards import domain`` then ``domain.fold_edition`` etc.
"""

from __future__ import annotations

from services.rewards.domain import standings
from services.rewards.domain.facts import (
    ASSIGNMENT_SUBJECT_TYPES,
    CREATED,
    DEFAULT_POINTS,
    EXTENDED,
    FAR_FUTURE,
    FULFILLED,
    KIND_EN,
    KIND_VI,
    MISSED,
    PROGRESS,
    RECEIVED,
    REINSTATED,
    REJECTED,
    REOPENED,
    REVISED,
    SCORED_TYPES,
    SELECTED,
    SHORT_KIND,
    SUBMISSION_SUBJECT_TYPES,
    SUBMISSION_TYPES,
    TARGET_MISSED,
    TARGET_REACHED,
    WITHDRAWN,
    Fact,
    ParticipantKind,
    SubmissionStatus,
    _aware,
    _ordered,
    business_time,
)
from services.rewards.domain.folds import (
    Assignment,
    AuthorShare,
    Fulfilment,
    Miss,
    Submission,
    _authors,
    fold_assignment,
    fold_submission,
)
from services.rewards.domain.ledger import (
    LedgerEntry,
    _round,
    assignment_entries,
    ledger_entries,
    subject_kind,
)
from services.rewards.domain.ranking import (
    Change,
    Eligibility,
    Ranked,
    RuleSum,
    Standing,
    changes,
    counted,
    fold_edition,
    place,
    priority,
    rank,
    rollup,
    rule_sums,
    sums_from_json,
    sums_json,
)
from services.rewards.domain.rules import (
    Rules,
    points_for,
    priced,
)
from services.rewards.domain.versions import Version, subject_versions

__all__ = [
    "ASSIGNMENT_SUBJECT_TYPES",
    "CREATED",
    "DEFAULT_POINTS",
    "EXTENDED",
    "FAR_FUTURE",
    "FULFILLED",
    "KIND_EN",
    "KIND_VI",
    "MISSED",
    "PROGRESS",
    "RECEIVED",
    "REINSTATED",
    "REJECTED",
    "REOPENED",
    "REVISED",
    "SCORED_TYPES",
    "SELECTED",
    "SHORT_KIND",
    "SUBMISSION_SUBJECT_TYPES",
    "SUBMISSION_TYPES",
    "TARGET_MISSED",
    "TARGET_REACHED",
    "WITHDRAWN",
    "Assignment",
    "AuthorShare",
    "Change",
    "Eligibility",
    "Fact",
    "Fulfilment",
    "LedgerEntry",
    "Miss",
    "ParticipantKind",
    "Ranked",
    "RuleSum",
    "Rules",
    "Standing",
    "Submission",
    "SubmissionStatus",
    "Version",
    "_authors",
    "_aware",
    "_ordered",
    "_round",
    "assignment_entries",
    "business_time",
    "changes",
    "counted",
    "fold_assignment",
    "fold_edition",
    "fold_submission",
    "ledger_entries",
    "place",
    "points_for",
    "priced",
    "priority",
    "rank",
    "rollup",
    "rule_sums",
    "standings",
    "subject_kind",
    "subject_versions",
    "sums_from_json",
    "sums_json",
]
