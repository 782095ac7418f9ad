"""The CloudEvents 1.0 envelope (structured JSON mode) every hoithi event travels in.

Extensions (lowercase letters and digits only, as the CloudEvents SDK requires): ``tenant``, ``edition``,
``sequence`` (1, 2, 3… per ``subject`` at the producer), ``correlationid``, ``causationid``,
``dataschemaversion``, and the distributed-tracing extension's ``traceparent`` / ``tracestate`` (W3C trace
context of the work that emitted the fact; present only when tracing is on, see ``shared/tracing.py``; never
validated here: a malformed one only starts a new trace). ``time`` is the business instant of the fact, never the publish time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import uuid6
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Namespace of the deterministic (UUIDv5) ids: facts that two producers could emit independently.
HOITHI_NAMESPACE = uuid.UUID("6f1d3c1e-8d0a-5a3e-9a57-2b1c0de2a023")


def new_event_id() -> str:
    """A UUIDv7: time-ordered, for ordinary facts."""
    return str(uuid6.uuid7())


def deterministic_id(*parts: object) -> str:
    """A UUIDv5 of the parts: the same fact from any replica, restart or rebuild gets the same id."""
    return str(uuid.uuid5(HOITHI_NAMESPACE, "|".join(str(p) for p in parts)))


class Envelope(BaseModel):
    """A CloudEvent in structured JSON mode. ``data`` is the event type's model, dumped to JSON types."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    tenant: str
    edition: str | None = None
    sequence: int = Field(ge=1)
    correlationid: str
    causationid: str | None = None
    dataschemaversion: int = 1
    traceparent: str | None = None
    tracestate: str | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must carry an offset")
        return v

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate_json(raw)

    def parsed(self) -> BaseModel:
        """The data as its catalogue model (raises ``pydantic.ValidationError`` if it does not fit)."""
        from shared.events.catalogue import parse_data

        return parse_data(self.type, self.data, self.dataschemaversion)


def source_of(service: str) -> str:
    """The CloudEvents ``source`` of what ``service`` produces."""
    return f"/hoithi/{service}"


def make_event(
    type_: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    tenant: str,
    subject: str,
    sequence: int,
    time: datetime,
    edition: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    trace: Mapping[str, str] | None = None,
    version: int | None = None,
) -> Envelope:
    """Build an envelope, validating ``data`` against the catalogue model of ``type_`` (at ``version``, default
    the current one). ``trace`` is the emitting work's trace context (``shared.tracing.carrier()``), carried as
    ``traceparent``/``tracestate``."""
    from shared.events.catalogue import event_type

    spec = event_type(type_, version)
    model = data if isinstance(data, spec.data) else spec.data.model_validate(data)
    eid = event_id or new_event_id()
    return Envelope(
        id=eid,
        source=source_of(source),
        type=type_,
        time=time if time.tzinfo else time.replace(tzinfo=UTC),
        subject=subject,
        data=model.model_dump(mode="json", exclude_none=False),
        tenant=tenant,
        edition=edition,
        sequence=sequence,
        correlationid=correlation_id or eid,
        causationid=causation_id,
        dataschemaversion=spec.version,
        traceparent=(trace or {}).get("traceparent"),
        tracestate=(trace or {}).get("tracestate"),
    )
