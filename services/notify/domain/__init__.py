"""Notification rules (thông báo): what triggers what, who is told, when, the ids that make telling idempotent.

Pure: no framework, database or broker. Texts shown to people are Vietnamese with full diacritics; instants are
shown in Vietnam time as ``dd/mm/yyyy HH:MM:SS (+07:00)``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, overload

from shared.clock import VN
from shared.documents import (
    Edition,
    ExperienceReportPart,
    Person,
    Role,
    Union,
    Unit,
    format_date_vn,
    format_datetime_vn,
    parse_duration,
)
from shared.events.catalogue import SubmissionReceived
from shared.events.envelope import deterministic_id

Channel = Literal["email", "in_app", "webhook"]
EMAIL: Channel = "email"
IN_APP: Channel = "in_app"
WEBHOOK: Channel = "webhook"

MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=5)
RETRY_MAX = timedelta(hours=1)

WEBHOOK_FAILURES_TO_DISABLE = 5  # failures in a row: the subscription is disabled, the secretariat told once
DIGEST_AT = time(7, 30)  # Vietnam time
SIGNATURE_HEADER = "X-Hoithi-Signature"

KIND_VI: dict[str, str] = {
    "experience_report": "Báo cáo trải nghiệm dịch vụ công trực tuyến",
    "initiative": "Sáng kiến cải cách hành chính",
}

# ------------------------------------------------------------------------------------------- what triggers what

# Audiences (who, resolved from notify's copy of the directory and of the edition):
Audience = Literal[
    "author",  # the submitting person
    "authors",  # every author of an initiative who is in the directory
    "assignee",  # a person assignee; a unit assignee's head; a council's chair and members
    "unit_head",  # the head(s) of the unit the fact is about (or of its parent, for a branch without one)
    "council",  # members and chair of the council the fact names
    "council_chair",  # the chair of that council
    "secretariat",  # everyone with the secretariat role
    "director",  # everyone with the director role
    "mobilisers_of_missed",  # each unit head and union secretary whose people missed (one summary each)
    "participant",  # a person participant; a unit participant's head(s)
]


@dataclass(frozen=True)
class Trigger:
    """One row of the table: an event type sends ``template`` to ``audiences``.

    ``urgent`` messages (receipts and deadline notices) are always sent at once, whatever the preferences;
    the others follow each person's preference (daily digest, quiet hours).
    """

    event_type: str
    template: str
    audiences: tuple[Audience, ...]
    urgent: bool


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("submission.received", "submission.received", ("author",), urgent=True),
    Trigger("deadline.approaching", "deadline.approaching", ("assignee",), urgent=True),
    Trigger("deadline.missed", "deadline.missed", ("assignee",), urgent=True),
    Trigger("deadline.passed", "deadline.passed.mobiliser", ("mobilisers_of_missed",), urgent=True),
    # the department-wide summary: the secretariat compiles, the director watches what is late
    Trigger("deadline.passed", "deadline.passed.secretariat", ("secretariat", "director"), urgent=True),
    Trigger("deadline.extended", "deadline.extended", ("assignee",), urgent=True),
    Trigger("initiative.scored", "initiative.scored", ("council_chair",), urgent=False),
    Trigger(
        "initiative.selected",
        "initiative.selected",
        ("authors", "unit_head", "council", "secretariat"),
        urgent=False,
    ),
    Trigger("submission.rejected", "submission.rejected", ("author", "unit_head"), urgent=False),
    Trigger(
        "onlineservice.progress.reported", "onlineservice.progress.reported", ("unit_head",), urgent=False
    ),
    Trigger("onlineservice.target.reached", "onlineservice.target.reached", ("unit_head",), urgent=False),
    Trigger("onlineservice.target.missed", "onlineservice.target.missed", ("unit_head",), urgent=False),
    # only when eligibility for a title is gained or lost: a mere move in rank or points tells nobody
    Trigger("reward.priority.changed", "reward.priority.changed", ("participant",), urgent=False),
)

# Messages notify makes itself, on its own clock or state (not one per event).
MOBILISATION = "mobilisation.daily"  # "not yet submitted" list, daily in the edition's window
DIGEST = "digest.daily"  # a person's non-urgent messages of the day, at 07:30
WEBHOOK_DISABLED = "webhook.disabled"  # to the secretariat, once per disabling
REMINDER = "reminder.manual"  # a mobiliser's "remind" action (services/notify/usecases/reminders.py)
OWN_TEMPLATES: tuple[str, ...] = (MOBILISATION, DIGEST, WEBHOOK_DISABLED, REMINDER)
OWN_KINDS: tuple[str, ...] = ("mobilisation", "digest", "webhook", "reminder")

RECEIPT = "submission.received"  # template name of the receipt (biên nhận)

TEMPLATES: tuple[str, ...] = (*dict.fromkeys(t.template for t in TRIGGERS), *OWN_TEMPLATES)


def triggers_of(event_type: str) -> list[Trigger]:
    return [t for t in TRIGGERS if t.event_type == event_type]


def template_urgent(template: str) -> bool:
    """Receipts and deadline notices are always immediate."""
    if template in (MOBILISATION, DIGEST, WEBHOOK_DISABLED):
        return template != MOBILISATION  # a list is a daily message already; the others are operational
    return any(t.urgent for t in TRIGGERS if t.template == template)


def check_template_name(name: str, known_event_types: Iterable[str]) -> str | None:
    """Why an override file's template name is refused (None: accepted).

    A template is named after the event type it answers (``deadline.passed.mobiliser`` answers
    ``deadline.passed``), or after one of notify's own kinds (``mobilisation.daily``).
    """
    if name in TEMPLATES:
        return None
    known = set(known_event_types)
    parts = name.split(".")
    event_types = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    if not (event_types & known) and parts[0] not in OWN_KINDS:
        return f"unknown event type in template name {name!r}"
    return f"no message is sent from template {name!r}; known: {', '.join(TEMPLATES)}"


# ------------------------------------------------------------------------------------------------ ids


def notification_id(
    cause_event_id: str, recipient: str, channel: Channel, template: str | None = None
) -> str:
    """The same cause, recipient and channel always give the same notification (uuid5): told once.

    ``template`` separates two messages one event sends to one person (a unit head who is also the secretariat
    gets the unit summary and the secretariat summary of one ``deadline.passed``).
    """
    if template is None or template in (RECEIPT,):
        return deterministic_id("notification", cause_event_id, recipient, channel)
    return deterministic_id("notification", cause_event_id, recipient, channel, template)


def timed_id(kind: str, recipient: str, day: date, channel: Channel, *scope: str) -> str:
    """A timed message (daily list, digest) is one per (kind, recipient, Vietnamese date) and channel."""
    return deterministic_id("timed", kind, *scope, recipient, day.isoformat(), channel)


def sent_event_id(notification: str) -> str:
    return deterministic_id("notification.sent", notification)


def failed_event_id(notification: str, attempt: int) -> str:
    return deterministic_id("notification.failed", notification, attempt)


def retry_delay(attempts: int, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_MAX) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2×base, 4×base … at most ``cap``."""
    delay: timedelta = base * 2 ** min(max(attempts - 1, 0), 30)
    return min(delay, cap)


def gives_up(attempts: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """After this many failed attempts the delivery is failed for good."""
    return attempts >= max_attempts


# -------------------------------------------------------------------------------------------- webhooks


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the exact body with the shared secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


def webhook_wants(event_types: Sequence[str], event_type: str) -> bool:
    """An empty filter means every event type; ``deadline.*`` matches a family."""
    if not event_types:
        return True
    return any(t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in event_types)


# ----------------------------------------------------------------------------------------- the directory


@dataclass(frozen=True)
class People:
    """notify's view of the directory on one date: people in force, units and unions."""

    people: tuple[Person, ...]
    units: dict[str, Unit] = field(default_factory=dict)
    unions: dict[str, Union] = field(default_factory=dict)

    @functools.cached_property
    def _index(self) -> tuple[dict[str, Person], dict[Role, list[Person]]]:
        """Each person by id and the people of each role (directory order), made once per snapshot: a snapshot
        serves every event until the directory changes, and scanning all of it per event (per recipient looked
        up) was most of notify's CPU during a rush (``bench/intake.py --profile-service notify``)."""
        by_id: dict[str, Person] = {}
        by_role: dict[Role, list[Person]] = {}
        for p in self.people:
            by_id.setdefault(p.id, p)
            for role in dict.fromkeys(p.roles):
                by_role.setdefault(role, []).append(p)
        return by_id, by_role

    def person(self, person_id: str) -> Person | None:
        return self._index[0].get(person_id)

    def with_role(self, role: Role | str) -> list[Person]:
        return list(self._index[1].get(Role(role), ()))

    def unit_chain(self, unit_id: str) -> list[str]:
        """The unit and its ancestors (a branch, then its parent)."""
        out: list[str] = []
        cur: str | None = unit_id
        while cur is not None and cur not in out:
            out.append(cur)
            u = self.units.get(cur)
            cur = u.parent if u is not None else None
        return out

    def heads_of(self, unit_id: str) -> list[Person]:
        """The unit's head(s); a branch without a head of its own answers to its parent's head."""
        for uid in self.unit_chain(unit_id):
            heads = [p for p in self.with_role(Role.unit_head) if p.unit == uid]
            if heads:
                return heads
        return []

    def secretaries_of(self, person: Person) -> list[Person]:
        out = []
        for union_id in person.unions:
            union = self.unions.get(union_id)
            if union is not None and union.secretary:
                sec = self.person(union.secretary)
                if sec is not None:
                    out.append(sec)
        return out

    def secretariat_unit(self) -> str | None:
        """The name of the unit the secretariat sits in (the directory says: e.g. Văn phòng Sở)."""
        for p in sorted(self.with_role(Role.secretariat), key=lambda p: p.id):
            u = self.units.get(p.unit)
            if u is not None:
                return u.name
        return None

    def signature(self) -> dict[str, str]:
        """How messages are signed: the contest secretariat, with its unit from the directory."""
        unit = self.secretariat_unit()
        return {
            "secretariat_vi": f"Thường trực Hội thi ({unit})" if unit else "Thường trực Hội thi",
            "secretariat_en": f"The contest secretariat ({unit})" if unit else "The contest secretariat",
        }

    def name_of(self, assignee_id: str) -> str:
        p = self.person(assignee_id)
        if p is not None:
            return p.name
        u = self.units.get(assignee_id)
        return u.name if u is not None else assignee_id


def _unique(people: Iterable[Person]) -> list[Person]:
    seen: dict[str, Person] = {}
    for p in people:
        seen.setdefault(p.id, p)
    return list(seen.values())


def council_people(edition: Edition | None, council_id: str | None, who: People) -> list[Person]:
    if edition is None:
        return []
    councils = [edition.councils[council_id]] if council_id in edition.councils else []
    if council_id is None:
        councils = list(edition.councils.values())[:1]
    ids: list[str] = []
    for c in councils:
        ids += ([c.chair] if c.chair else []) + list(c.members)
    return _unique(p for i in ids if (p := who.person(i)) is not None)


def council_chair(edition: Edition | None, council_id: str | None, who: People) -> list[Person]:
    if edition is None:
        return []
    council = edition.councils.get(council_id or "") or next(iter(edition.councils.values()), None)
    if council is None:
        return who.with_role(Role.council_chair)
    chair = who.person(council.chair) if council.chair else None
    return [chair] if chair is not None else who.with_role(Role.council_chair)


def assignee_people(
    assignee_kind: str | None, assignee_id: str, edition: Edition | None, who: People
) -> list[Person]:
    """Who is told about an assignment: the person; a unit's head; a council's chair and members."""
    if assignee_kind == "council" or (edition is not None and assignee_id in edition.councils):
        return council_people(edition, assignee_id, who)
    person = who.person(assignee_id)
    if person is not None and assignee_kind in (None, "person"):
        return [person]
    return who.heads_of(assignee_id)


def resolve(audience: Audience, data: dict[str, Any], edition: Edition | None, who: People) -> list[Person]:
    """The people one audience of one event's data means (``mobilisers_of_missed`` is ``summaries``' job)."""
    if audience == "author":
        p = who.person(str(data.get("author_id", "")))
        return [p] if p is not None else []
    if audience == "authors":
        ids = [a.get("person_id") for a in data.get("authors") or [] if isinstance(a, dict)]
        return _unique(p for i in ids if i and (p := who.person(i)) is not None)
    if audience == "assignee":
        return assignee_people(data.get("assignee_kind"), str(data.get("assignee_id", "")), edition, who)
    if audience == "unit_head":
        unit_id = data.get("unit_id")
        if not unit_id and (author := who.person(str(data.get("author_id", "")))) is not None:
            unit_id = author.unit
        return who.heads_of(str(unit_id)) if unit_id else []
    if audience == "council":
        return council_people(edition, data.get("council_id"), who)
    if audience == "council_chair":
        return council_chair(edition, data.get("council_id"), who)
    if audience == "secretariat":
        return who.with_role(Role.secretariat)
    if audience == "director":
        return who.with_role(Role.director)
    if audience == "participant":
        pid = str(data.get("participant_id", ""))
        if data.get("participant_kind") == "unit":
            return who.heads_of(pid)
        p = who.person(pid)
        return [p] if p is not None else []
    return []


def eligibility_change(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The title keys a ``reward.priority.changed`` gains and loses against ``previous_eligibility`` (what
    notify last saw for that participant; none seen: nothing)."""
    now = set(data.get("eligibility") or [])
    before = set(data.get("previous_eligibility") or [])
    return sorted(now - before), sorted(before - now)


@dataclass(frozen=True)
class Summary:
    """One recipient's part of a ``deadline.passed``: the people (or units) of theirs who missed."""

    recipient: Person
    roles: tuple[str, ...]  # unit_head and/or union_secretary: why these names are theirs
    missed: tuple[str, ...]  # names, sorted


def summaries(missed_by_unit: dict[str, list[str]], who: People) -> list[Summary]:
    """One summary per recipient — each unit head and union secretary whose people missed — never one per
    person missed, and one even for someone who is both (their lists merged).

    A person assignee counts for the head(s) of their unit (a branch's staff for the parent's head when the
    branch has none) and for the secretary of each of their unions; a unit assignee counts for its head.
    """
    names: dict[str, set[str]] = {}
    roles: dict[str, set[str]] = {}
    people: dict[str, Person] = {}

    def count(p: Person, role: str, name: str) -> None:
        people[p.id] = p
        names.setdefault(p.id, set()).add(name)
        roles.setdefault(p.id, set()).add(role)

    for unit_id, assignees in missed_by_unit.items():
        for assignee in assignees:
            name = who.name_of(assignee)
            for head in who.heads_of(unit_id):
                count(head, "unit_head", name)
            person = who.person(assignee)
            if person is not None:
                for sec in who.secretaries_of(person):
                    count(sec, "union_secretary", name)
    return [
        Summary(people[pid], tuple(sorted(roles[pid])), tuple(sorted(names[pid]))) for pid in sorted(people)
    ]


@dataclass(frozen=True)
class OpenAssignment:
    assignment_id: str
    part: str
    assignee_id: str
    unit_id: str | None


def mobilisation_lists(
    open_assignments: Iterable[OpenAssignment], who: People, roles: Sequence[str]
) -> dict[str, tuple[Person, tuple[str, ...]]]:
    """Per mobiliser (unit heads, union secretaries as the part's ``mobilised_by`` says): names not yet in."""
    per: dict[str, set[str]] = {}
    people: dict[str, Person] = {}
    for a in open_assignments:
        person = who.person(a.assignee_id)
        mobilisers: list[Person] = []
        if Role.unit_head in roles:
            mobilisers += who.heads_of(a.unit_id or (person.unit if person else a.assignee_id))
        if Role.union_secretary in roles and person is not None:
            mobilisers += who.secretaries_of(person)
        for m in mobilisers:
            if m.id == a.assignee_id and len(mobilisers) == 1:
                continue  # nobody to mobilise a head who is their own only mobiliser
            people[m.id] = m
            per.setdefault(m.id, set()).add(who.name_of(a.assignee_id))
    return {pid: (people[pid], tuple(sorted(names))) for pid, names in sorted(per.items())}


# ----------------------------------------------------------------------------------------------- timing


def mobilisation_day(part: ExperienceReportPart, deadline: datetime, now: datetime) -> date | None:
    """The Vietnamese date of the latest daily list due at ``now`` (None: outside the window).

    Lists go out each day at ``at`` from ``deadline - from`` until the deadline; after a catch-up only the
    latest is sent (no stale lists).
    """
    if part.mobilisation_lists is None or now >= deadline:
        return None
    start = deadline - parse_duration(part.mobilisation_lists.from_)
    hh, mm = (int(x) for x in part.mobilisation_lists.at.split(":"))
    local = now.astimezone(VN)
    slot = datetime.combine(local.date(), time(hh, mm), VN)
    if slot > local:
        slot -= timedelta(days=1)
    if slot < start or slot >= deadline:
        return None
    return slot.date()


def digest_day(now: datetime) -> date:
    """The date of the digest a non-urgent message held at ``now`` goes into (the next 07:30 +07:00)."""
    local = now.astimezone(VN)
    slot = datetime.combine(local.date(), DIGEST_AT, VN)
    return local.date() if local < slot else local.date() + timedelta(days=1)


def digest_due(day: date, now: datetime) -> bool:
    return now >= datetime.combine(day, DIGEST_AT, VN)


@dataclass(frozen=True)
class Preference:
    """A person's choice: ``immediate`` or ``digest`` for non-urgent kinds; quiet hours (Vietnam time)."""

    mode: Literal["immediate", "digest"] = "immediate"
    quiet_from: time | None = None
    quiet_to: time | None = None
    language: Literal["vi", "en"] = "vi"


def quiet_until(pref: Preference, now: datetime) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (None: not quiet). Quiet hours may wrap midnight."""
    if pref.quiet_from is None or pref.quiet_to is None or pref.quiet_from == pref.quiet_to:
        return None
    local = now.astimezone(VN)
    t = local.time()
    if pref.quiet_from < pref.quiet_to:
        inside = pref.quiet_from <= t < pref.quiet_to
        end_day = local.date()
    else:
        inside = t >= pref.quiet_from or t < pref.quiet_to
        end_day = local.date() + timedelta(days=1) if t >= pref.quiet_from else local.date()
    return datetime.combine(end_day, pref.quiet_to, VN) if inside else None


@dataclass(frozen=True)
class Schedule:
    """When an email goes out: ``held`` for a digest of ``digest_on``, else at ``due_at`` (None: now)."""

    held: bool = False
    digest_on: date | None = None
    due_at: datetime | None = None


# The lanes of the delivery queue: what is due goes out lane by lane, in the order it fell due within a lane. A
# receipt answers what its reader has just done — at a deadline rush it decides for them whether they were on
# time — so it never waits behind the reminders and notices the clock fans out to every assignee at once
# (20,000 officials: 40,000 reminders, and the rush's receipts behind them for 97 s).
RECEIPT_LANE, OTHER_LANE = 0, 1
RECEIPTS = frozenset({"submission.received"})


LANES = (RECEIPT_LANE, OTHER_LANE)  # every lane, in the order due rows are sent


def lane(template: str) -> int:
    """The delivery lane of a message of ``template``."""
    return RECEIPT_LANE if template in RECEIPTS else OTHER_LANE


def schedule(template: str, pref: Preference, now: datetime) -> Schedule:
    if template_urgent(template):
        return Schedule()
    if pref.mode == "digest" and template != MOBILISATION:
        return Schedule(held=True, digest_on=digest_day(now))
    return Schedule(due_at=quiet_until(pref, now))


def vn_date(dt: datetime) -> str:
    return format_date_vn(dt.astimezone(VN))


@overload
def vn_time(dt: datetime) -> datetime: ...
@overload
def vn_time(dt: None) -> None: ...
def vn_time(dt: datetime | None) -> datetime | None:
    """Instants are shown in Vietnam time (+07:00)."""
    return dt.astimezone(VN) if dt is not None else None


@dataclass(frozen=True)
class Receipt:
    """What a receipt (biên nhận) tells the submitter."""

    receipt_number: str
    edition: str
    received_at: datetime
    kind: str
    part: str
    part_title: str | None = None
    edition_title: str | None = None
    title: str | None = None
    procedures: tuple[str, ...] = ()
    person_name: str | None = None
    unit_name: str | None = None

    def context(self) -> dict[str, Any]:
        """The template variables (every instant already formatted for Vietnamese readers)."""
        return {
            "receipt_number": self.receipt_number,
            "edition": self.edition,
            "edition_title": self.edition_title or f"Hội thi Cải cách hành chính {self.edition}",
            "received_at_vn": format_datetime_vn(self.received_at),
            "kind_vi": KIND_VI.get(self.kind, self.kind),
            "part": self.part,
            "part_title": self.part_title or self.part,
            "title": self.title,
            "procedures": list(self.procedures),
            "procedure_count": len(self.procedures),
            "person_name": self.person_name,
            "unit_name": self.unit_name,
        }


def receipt_of(
    data: SubmissionReceived,
    *,
    edition: str,
    document: Edition | None = None,
    person_name: str | None = None,
    unit_name: str | None = None,
) -> Receipt:
    part_title = None
    if document is not None:
        try:
            part_title = document.part(data.part).title
        except KeyError:
            part_title = None
    return Receipt(
        receipt_number=data.receipt_number,
        edition=edition,
        received_at=data.received_at,
        kind=data.kind,
        part=data.part,
        part_title=part_title,
        edition_title=document.title if document is not None else None,
        title=data.title,
        procedures=tuple(data.procedures),
        person_name=person_name,
        unit_name=unit_name,
    )
