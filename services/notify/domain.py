"""Notification rules (thông báo): who is told what, the ids that make telling idempotent, and the retry policy.

Pure: no framework, database or broker. Texts shown to people are Vietnamese with full diacritics; instants are
shown in Vietnam time as ``dd/mm/yyyy HH:MM:SS (+07:00)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.documents import Edition, format_datetime_vn
from shared.events.catalogue import SubmissionReceived
from shared.events.envelope import deterministic_id

Channel = Literal["email", "in_app", "webhook"]
EMAIL: Channel = "email"
IN_APP: Channel = "in_app"

RECEIPT = "receipt"  # template name

MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=5)
RETRY_MAX = timedelta(hours=1)

KIND_VI: dict[str, str] = {
    "experience_report": "Báo cáo trải nghiệm dịch vụ công trực tuyến",
    "initiative": "Sáng kiến cải cách hành chính",
}


def notification_id(cause_event_id: str, recipient: str, channel: Channel) -> str:
    """The same cause, recipient and channel always give the same notification (uuid5): told once."""
    return deterministic_id("notification", cause_event_id, recipient, channel)


def sent_event_id(notification: str) -> str:
    return deterministic_id("notification.sent", notification)


def failed_event_id(notification: str, attempt: int) -> str:
    return deterministic_id("notification.failed", notification, attempt)


def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: 5 s, 10 s, 20 s … at most an hour."""
    delay: timedelta = RETRY_BASE * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX)


def gives_up(attempts: int) -> bool:
    """After this many failed attempts the delivery is failed for good."""
    return attempts >= MAX_ATTEMPTS


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
