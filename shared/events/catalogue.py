"""The event catalogue: one Pydantic model per event type's CloudEvent ``data``, and what each type means.

Pure: no framework, database or broker imports. ``CATALOGUE`` holds the current version of every type;
``VERSIONS`` holds every version still accepted (keyed by ``(type, version)``), so a consumer can parse an
older ``dataschemaversion`` until it is retired.

Rules every model follows:

- unknown fields are ignored (``extra="ignore"``; ``parse_data`` extends that to the nested directory and edition
  documents): a producer may add an optional field without a new version;
- business instants are aware datetimes (producers emit +07:00; any offset is accepted);
- ids are strings; field names are snake_case;
- events carry ids and facts, never copies of directory data (names, e-mails): consumers keep their own copy
  of the directory from ``directory.*.changed``.

Versions: adding an optional field keeps the version; anything else (removing, renaming, retyping, making
required, changing the allowed values) is a new version: register the new model under ``version + 1`` in
``_TYPES`` and move the old one to ``_RETIRED_VERSIONS`` while consumers still accept it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared import documents

# ------------------------------------------------------------------------------------------- shared pieces

SubmissionKind = Literal["experience_report", "initiative"]
AssigneeKind = Literal["unit", "person", "council"]
PartKind = Literal["initiative", "experience_report", "selection", "online_services_campaign"]
ParticipantKind = Literal["person", "unit"]
Channel = Literal["email", "in_app", "webhook"]
ProcedureLevel = Literal["full_process", "partial", "not_offered"]

PART_KINDS: tuple[str, ...] = ("initiative", "experience_report", "selection", "online_services_campaign")

# National procedure code from the national procedure database, e.g. ``1.004227``. Producers normalise the
# provincial long form (``1.011442.000.00.00.H38``) to its national part before publishing.
ProcedureCode = Annotated[str, Field(pattern=r"^\d\.\d{6}$", examples=["1.004227"])]


class EventData(BaseModel):
    """Base of every event's ``data``: unknown (newer, optional) fields are ignored, instances are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Author(EventData):
    """One author of a submission. ``person_id`` is None for an author outside the directory."""

    person_id: str | None = None
    name: str
    share: float = Field(ge=0, le=100, description="contribution in percent; an experience report: 100")


class BilingualText(EventData):
    vi: str
    en: str


# ---------------------------------------------------------------------------------------------- campaign


class EditionPublished(EventData):
    """The whole edition document as published; ``version`` increases with every republication."""

    version: int = Field(ge=1)
    document: documents.Edition
    published_by: str | None = Field(default=None, description="person id of the secretariat member")


class EditionOpened(EventData):
    at: AwareDatetime = Field(description="the instant the edition opened")
    edition_version: int | None = Field(default=None, ge=1, description="edition document version in force")


class EditionClosed(EventData):
    at: AwareDatetime = Field(description="the instant the edition closed")
    edition_version: int | None = Field(default=None, ge=1, description="edition document version in force")


class DirectoryUnitChanged(EventData):
    """A unit (or a union: trade union, youth union — the parallel tree) as of its ``effective_from``.

    Exactly one of ``unit`` and ``union`` is set; the CloudEvent ``subject`` is that one's id. Units and unions
    are never deleted: an ended one is republished with ``effective_to``.
    """

    unit: documents.Unit | None = None
    union: documents.Union | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DirectoryUnitChanged:
        if (self.unit is None) == (self.union is None):
            raise ValueError("exactly one of unit and union must be set")
        return self


class DirectoryPersonChangedV1(EventData):
    """A person with their unit, roles and union memberships as of the record's effective date."""

    # Version 1 (retired, still accepted): the whole directory record, date of birth and qualification
    # included; no consumer keeps those two (shared/copies.py). Its committed schema stays as it was.
    model_config = ConfigDict(title="DirectoryPersonChanged")

    person: documents.Person


class PersonFact(EventData):
    """A person as every service needs them: who, where, in which roles and unions, and how to reach them.

    No date of birth and no qualification: those stay in campaign's directory alone (Decree 13/2023: an
    append-only stream kept for years must not spread data no consumer needs; README "Personal data")."""

    id: documents.Id
    name: str = Field(min_length=1)
    email: documents.Email
    title: str = Field(min_length=1)
    unit: documents.Id
    roles: list[documents.Role] = Field(default_factory=list)
    unions: list[documents.Id] = Field(default_factory=list)
    effective_from: date | None = None
    effective_to: date | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_directory_record(cls, value: Any) -> Any:
        """A directory ``Person`` becomes its fact (what is not part of it is left behind)."""
        if isinstance(value, documents.Person):
            return value.model_dump(exclude=set(documents.PERSON_SENSITIVE_FIELDS))
        return value

    @classmethod
    def of(cls, person: documents.Person) -> PersonFact:
        return cls.model_validate(person)


class DirectoryPersonChanged(EventData):
    """A person with their unit, roles and union memberships as of the record's effective date (v2: without
    date of birth and qualification)."""

    person: PersonFact


class Procedure(EventData):
    """One administrative procedure (thủ tục hành chính) a unit handles, with its online level."""

    code: ProcedureCode
    name: str
    level: ProcedureLevel = Field(description="toàn trình / một phần / not offered online")
    eligible_full_process: bool = Field(description="the procedure may be offered full-process")
    field_name: str | None = Field(default=None, description="lĩnh vực, e.g. Đất đai")
    local_code: str | None = Field(
        default=None, description="provincial long form, e.g. 1.011442.000.00.00.H38"
    )


class ProcedureCatalogueChanged(EventData):
    """The complete list of procedures known for one unit (replaces the previous list)."""

    unit_id: str
    procedures: list[Procedure]
    at: AwareDatetime = Field(description="from when this list holds")
    until: AwareDatetime | None = Field(
        default=None,
        description="a correction of a past period: holds until this newer list's date (exclusive)",
    )
    correction: bool = Field(default=False, description="dated before a newer list: corrects a past period")


class AssignmentCreated(EventData):
    assignment_id: str
    part: str = Field(description="part id in the edition document")
    part_kind: PartKind
    assignee_kind: AssigneeKind
    assignee_id: str
    unit_id: str | None = Field(default=None, description="the assignee's unit; None for a council")
    deadline: AwareDatetime = Field(description="exclusive end: on time means strictly before it")
    edition_version: int | None = Field(default=None, ge=1)


class AssignmentFulfilled(EventData):
    assignment_id: str
    part: str
    part_kind: PartKind | None = None
    assignee_kind: AssigneeKind
    assignee_id: str
    unit_id: str | None = Field(default=None, description="the assignee's unit; None for a council")
    submission_id: str | None = Field(default=None, description="the submission that fulfilled it, if any")
    fulfilled_at: AwareDatetime
    deadline: AwareDatetime = Field(description="the deadline in force at fulfilment")
    on_time: bool = Field(description="fulfilled_at < deadline")


class AssignmentReopened(EventData):
    assignment_id: str
    part: str
    part_kind: PartKind | None = None
    assignee_kind: AssigneeKind
    assignee_id: str
    unit_id: str | None = None
    reason: str = Field(
        description="the event type that undid it: submission.withdrawn | submission.rejected"
    )
    submission_id: str | None = None
    at: AwareDatetime | None = None


class DeadlineApproaching(EventData):
    """A reminder for one unfulfilled assignment: only the latest offset still due before the deadline."""

    assignment_id: str
    part: str
    assignee_kind: AssigneeKind | None = None
    assignee_id: str
    unit_id: str | None = None
    deadline: AwareDatetime = Field(description="the deadline in force")
    offset: documents.IsoDuration = Field(
        description="how long before the deadline the reminder is due, e.g. P3D"
    )


class DeadlineMissed(EventData):
    """One assignment passed its deadline in force unfulfilled (a later on-time fulfilment voids it)."""

    assignment_id: str
    part: str
    part_kind: PartKind | None = None
    assignee_kind: AssigneeKind
    assignee_id: str
    unit_id: str | None = None
    deadline: AwareDatetime = Field(description="the deadline in force that was missed")


class DeadlinePassed(EventData):
    """One part's deadline passed: counts and who missed, per unit (for summaries)."""

    part: str
    deadline: AwareDatetime
    assigned: int = Field(ge=0)
    fulfilled: int = Field(ge=0)
    missed_by_unit: dict[str, list[str]] = Field(description="unit id -> assignee ids that missed")


class DeadlineExtended(EventData):
    assignment_id: str
    part: str
    assignee_kind: AssigneeKind | None = None
    assignee_id: str
    previous_deadline: AwareDatetime
    new_deadline: AwareDatetime
    reason: str
    approved_by: str = Field(description="person id of the approver")


class OnlineServiceProgress(EventData):
    """One procedure's figures in a 90-day campaign report."""

    code: ProcedureCode
    level: ProcedureLevel
    eligible_full_process: bool
    dossiers_received: int | None = Field(default=None, ge=0)
    dossiers_online: int | None = Field(default=None, ge=0)
    dossiers_on_time: int | None = Field(default=None, ge=0)


class OnlineServiceProgressReported(EventData):
    """90-day campaign: a unit's procedures and figures for a period. ``figures`` uses the target names."""

    assignment_id: str
    part: str
    unit_id: str
    period_start: AwareDatetime
    period_end: AwareDatetime = Field(description="exclusive end of the period")
    procedures: list[OnlineServiceProgress] = Field(default_factory=list)
    figures: dict[str, float] = Field(
        description="target name -> value, e.g. full_process_share_of_eligible: 0.8 (shares 0..1)"
    )
    reported_by: str | None = Field(default=None, description="person id")


class OnlineServiceTargetResult(EventData):
    assignment_id: str
    part: str
    unit_id: str
    at: AwareDatetime = Field(description="when the campaign result was decided (its end)")
    figures: dict[str, float] = Field(description="target name -> value achieved")
    targets: dict[str, float] = Field(description="target name -> value required")
    unmet: list[str] = Field(default_factory=list, description="names of the targets not reached")


class OnlineServiceTargetReached(OnlineServiceTargetResult):
    """A unit's 90-day result met every target."""


class OnlineServiceTargetMissed(OnlineServiceTargetResult):
    """A unit's 90-day result missed at least one target (listed in ``unmet``)."""


# ------------------------------------------------------------------------------------------- submissions


class IntakeClosed(EventData):
    """Every receipt before ``deadline`` for ``part`` (one assignee's, if ``assignee_id``) is published."""

    part: str
    deadline: AwareDatetime
    assignee_id: str | None = Field(default=None, description="set for one assignee's extended deadline")
    accepted_on_time: int = Field(ge=0)


class SubmissionReceived(EventData):
    submission_id: str
    kind: SubmissionKind
    part: str
    receipt_number: str
    received_at: AwareDatetime
    author_id: str = Field(description="the submitting person")
    unit_id: str = Field(description="the submitter's unit at receipt")
    union_ids: list[str] = Field(default_factory=list, description="the submitter's unions at receipt")
    authors: list[Author] = Field(description="an experience report: the submitter alone, share 100")
    title: str | None = None
    procedures: list[ProcedureCode] = Field(default_factory=list, description="national codes (reports)")
    revision: int = Field(default=1, ge=1)


class _SubmissionChange(EventData):
    submission_id: str
    kind: SubmissionKind
    part: str
    author_id: str
    unit_id: str
    at: AwareDatetime


class SubmissionRevised(_SubmissionChange):
    """A change before the deadline. Fields left None are unchanged."""

    revision: int = Field(ge=2)
    authors: list[Author] | None = None
    title: str | None = None
    procedures: list[ProcedureCode] | None = None


class SubmissionWithdrawn(_SubmissionChange):
    reason: str | None = None


class SubmissionRejected(_SubmissionChange):
    """The secretariat ruled an accepted submission ineligible."""

    reason: str
    rejected_by: str | None = Field(default=None, description="person id")


class SubmissionReinstated(_SubmissionChange):
    """The secretariat reversed a rejection."""

    reason: str | None = None
    reinstated_by: str | None = Field(default=None, description="person id")


class InitiativeScored(EventData):
    """A council member's score sheet for one initiative (a later sheet from the same member replaces it)."""

    submission_id: str
    part: str = Field(description="the selection part")
    council_id: str
    member_id: str = Field(description="person id of the council member")
    scores: dict[str, float] = Field(description="criterion id -> points")
    total: float
    comment: str | None = None
    at: AwareDatetime
    revision: int = Field(default=1, ge=1)


class InitiativeSelected(EventData):
    """The council selected the initiative to be sent on (to the edition's ``destination``)."""

    submission_id: str
    part: str = Field(description="the selection part")
    initiative_part: str | None = Field(default=None, description="the part the initiative was submitted to")
    council_id: str | None = None
    unit_id: str
    authors: list[Author] = Field(default_factory=list)
    score: float | None = Field(default=None, description="aggregate score (the rubric's mean or median)")
    rank: int | None = Field(default=None, ge=1)
    at: AwareDatetime
    destination: str | None = Field(
        default=None,
        description="where it is sent on, from the edition's selection part (e.g. 'cấp tỉnh'); none: not said",
    )


# ----------------------------------------------------------------------------------------------- rewards


class RewardPriorityChanged(EventData):
    participant_kind: ParticipantKind
    participant_id: str
    rank: int | None = Field(default=None, ge=1, description="None: not ranked (no longer participating)")
    previous_rank: int | None = Field(default=None, ge=1)
    points: float
    eligibility: list[str] = Field(
        default_factory=list, description="title keys the participant is eligible for or has evidence for"
    )
    reasons: list[BilingualText] = Field(default_factory=list)
    rules_version: int = Field(ge=1)


# ------------------------------------------------------------------------------------------------ notify


class _Notification(EventData):
    notification_id: str
    channel: Channel
    recipient: str = Field(description="person id (email, in_app) or endpoint id (webhook)")
    template: str
    cause_event_id: str | None = Field(default=None, description="id of the event that caused it")
    attempt: int | None = Field(default=None, ge=1)


class NotificationSent(_Notification):
    pass


class NotificationFailed(_Notification):
    error: str
    final: bool | None = Field(default=None, description="no further attempt will be made")


# -------------------------------------------------------------------------------------------- dead letters


class DeadletterRecorded(EventData):
    """A message a consumer gave up on, with everything needed to replay it to that one consumer."""

    service: str
    consumer: str = Field(description="durable consumer name, e.g. rewards-ledger-v1")
    reason: str = Field(description="invalid_payload | deliveries_exhausted | …")
    error: str
    original_subject: str
    stream: str
    stream_sequence: int = Field(ge=1)
    deliveries: int = Field(ge=0)
    original_headers: dict[str, str] = Field(default_factory=dict)
    original_base64: str = Field(description="the original message bytes, base64")
    original_id: str | None = Field(default=None, description="the original event id, if it could be read")
    original_type: str | None = None


# --------------------------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class EventType:
    type: str
    version: int
    data: builtins.type[BaseModel]
    producer: str  # "campaign" | "submissions" | "rewards" | "notify" | "any"
    summary: str
    subject: str
    consumers: tuple[str, ...] = field(default=())


_ALL = ("campaign", "submissions", "rewards", "notify")

_TYPES: tuple[EventType, ...] = (
    EventType("edition.published", 1, EditionPublished, "campaign",
              "The edition document (parts, deadlines, rules, rubric, reward rules), versioned; consumers keep "
              "their own copy.", "edition id", _ALL),
    EventType("edition.opened", 1, EditionOpened, "campaign", "An edition starts.", "edition id", _ALL),
    EventType("edition.closed", 1, EditionClosed, "campaign", "An edition ends.", "edition id", _ALL),
    EventType("directory.unit.changed", 1, DirectoryUnitChanged, "campaign",
              "An effective-dated directory fact about a unit or a union.", "unit id or union id", _ALL),
    EventType("directory.person.changed", 2, DirectoryPersonChanged, "campaign",
              "An effective-dated directory fact about a person (unit, roles, unions).", "person id", _ALL),
    EventType("procedure.catalogue.changed", 1, ProcedureCatalogueChanged, "campaign",
              "The administrative procedures known for a unit, with their levels.", "unit id",
              ("submissions",)),
    EventType("assignment.created", 1, AssignmentCreated, "campaign",
              "A unit, person or council must deliver a part by a deadline.", "assignment id",
              ("notify", "rewards")),
    EventType("assignment.fulfilled", 1, AssignmentFulfilled, "campaign",
              "An assignment became done (on time or late).", "assignment id", ("rewards", "notify")),
    EventType("assignment.reopened", 1, AssignmentReopened, "campaign",
              "An assignment became undone by a withdrawal or rejection.", "assignment id",
              ("rewards", "notify")),
    EventType("deadline.approaching", 1, DeadlineApproaching, "campaign",
              "A reminder before a deadline for one unfulfilled assignment.", "assignment id", ("notify",)),
    EventType("deadline.missed", 1, DeadlineMissed, "campaign",
              "One assignment passed its deadline in force unfulfilled.", "assignment id",
              ("notify", "rewards")),
    EventType("deadline.passed", 1, DeadlinePassed, "campaign",
              "One part's deadline passed: counts and the list of who missed, per unit.", "part id",
              ("notify",)),
    EventType("deadline.extended", 1, DeadlineExtended, "campaign",
              "A later deadline for one assignee, with reason and approver.", "assignment id",
              ("notify", "rewards", "submissions")),
    EventType("intake.closed", 1, IntakeClosed, "submissions",
              "A part's intake is closed for a deadline (or one assignee's extended deadline) and every "
              "receipt before it is published: the count accepted on time.", "part id", ("campaign",)),
    EventType("submission.received", 1, SubmissionReceived, "submissions",
              "An initiative or experience report was accepted.", "submission id",
              ("campaign", "rewards", "notify")),
    EventType("submission.revised", 1, SubmissionRevised, "submissions",
              "A submission was revised before the deadline.", "submission id",
              ("campaign", "rewards", "notify")),
    EventType("submission.withdrawn", 1, SubmissionWithdrawn, "submissions",
              "A submission was withdrawn before the deadline.", "submission id",
              ("campaign", "rewards", "notify")),
    EventType("submission.rejected", 1, SubmissionRejected, "submissions",
              "The secretariat ruled an accepted submission ineligible, with a reason.", "submission id",
              ("campaign", "rewards", "notify")),
    EventType("submission.reinstated", 1, SubmissionReinstated, "submissions",
              "The secretariat reversed a rejection.", "submission id", ("campaign", "rewards", "notify")),
    EventType("initiative.scored", 1, InitiativeScored, "submissions",
              "A council member's score sheet is in.", "submission id", ("notify",)),
    EventType("initiative.selected", 1, InitiativeSelected, "submissions",
              "The council selected an initiative for the provincial contest.", "submission id",
              ("rewards", "notify", "campaign")),
    EventType("onlineservice.progress.reported", 1, OnlineServiceProgressReported, "campaign",
              "90-day campaign: a unit's procedures and figures for a period.", "assignment id",
              ("rewards", "notify")),
    EventType("onlineservice.target.reached", 1, OnlineServiceTargetReached, "campaign",
              "A unit's 90-day result reached its targets.", "assignment id", ("rewards", "notify")),
    EventType("onlineservice.target.missed", 1, OnlineServiceTargetMissed, "campaign",
              "A unit's 90-day result missed its targets.", "assignment id", ("rewards", "notify")),
    EventType("reward.priority.changed", 1, RewardPriorityChanged, "rewards",
              "A participant gained or lost eligibility for a title, with reasons.", "participant id (person or unit)",
              ("notify",)),
    EventType("notification.sent", 1, NotificationSent, "notify", "A notification was delivered.",
              "notification id", ()),
    EventType("notification.failed", 1, NotificationFailed, "notify", "A notification delivery failed.",
              "notification id", ()),
    EventType("deadletter.recorded", 1, DeadletterRecorded, "any",
              "A consumer gave up on a message (invalid payload or last delivery failed); it can be replayed.",
              "original event id (or <stream>:<stream sequence> when unreadable)", ()),
)  # fmt: skip

# Older versions consumers still accept: add an EventType with the old model here when a type gets a new version.
_RETIRED_VERSIONS: tuple[EventType, ...] = (
    EventType("directory.person.changed", 1, DirectoryPersonChangedV1, "campaign",
              "An effective-dated directory fact about a person (unit, roles, unions).", "person id", _ALL),
)  # fmt: skip

CATALOGUE: dict[str, EventType] = {t.type: t for t in _TYPES}
VERSIONS: dict[tuple[str, int], EventType] = {(t.type, t.version): t for t in (*_RETIRED_VERSIONS, *_TYPES)}

# Fact kinds a rewards rules document may name (``rewards.points`` keys): an event type, qualified by the
# submission kind or the part kind where one type covers several achievements.
REWARD_FACT_KINDS: tuple[str, ...] = (
    "submission.received/experience",
    "submission.received/initiative",
    "initiative.selected",
    "onlineservice.progress.reported",
    "onlineservice.target.reached",
    "onlineservice.target.missed",
    "deadline.missed",
    *(f"assignment.fulfilled/{kind}" for kind in PART_KINDS),
)

# Titles (danh hiệu thi đua) a rules document's ``eligibility`` may name, with their Vietnamese and English names:
# rewards decides eligibility for them, ``reward.priority.changed`` carries the keys, notify names them.
REWARD_TITLES: dict[str, tuple[str, str]] = {
    "chien_si_thi_dua_co_so": ("Chiến sĩ thi đua cơ sở", "Grassroots Emulation Fighter"),
    "lao_dong_tien_tien_evidence": ("Minh chứng Lao động tiên tiến", "Evidence for Advanced Worker"),
    "tap_the_lao_dong_tien_tien_evidence": (
        "Minh chứng Tập thể lao động tiên tiến",
        "Evidence for Advanced Collective",
    ),
    "giay_khen": ("Giấy khen", "Certificate of merit"),
}


def event_type(type: str, version: int | None = None) -> EventType:
    """The catalogue entry of ``type`` (its current version unless ``version`` is given); KeyError if unknown."""
    if version is None:
        try:
            return CATALOGUE[type]
        except KeyError:
            raise KeyError(
                f"unknown event type {type!r}: not in the catalogue (shared/events/catalogue.py)"
            ) from None
    try:
        return VERSIONS[(type, version)]
    except KeyError:
        known = sorted(v for (t, v) in VERSIONS if t == type)
        if not known:
            raise KeyError(
                f"unknown event type {type!r}: not in the catalogue (shared/events/catalogue.py)"
            ) from None
        raise KeyError(f"event type {type!r} has no dataschemaversion {version} (known: {known})") from None


def parse_data(type: str, data: dict[str, Any], version: int | None = None) -> BaseModel:
    """Validate ``data`` as the model of ``type`` at ``version`` (default: current).

    Raises KeyError for an unknown type or version and ``pydantic.ValidationError`` for data that does not fit:
    both mean the message can never succeed (dead-letter it).
    """
    # extra="ignore" reaches nested models too: the directory and edition documents forbid unknown keys when a
    # person writes them, but an event from a newer producer may carry an added optional field.
    model: BaseModel = event_type(type, version).data.model_validate(data, extra="ignore")
    return model
