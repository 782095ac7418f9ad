"""Which version of an event type a producer emits: the highest one every durable consumer of that type accepts.

A new version rolls out consumers first (README "Upgrading without downtime"). So that this holds by itself
during a rolling update, each durable consumer carries the versions its code accepts, per type, in its NATS
metadata (``hoithi-accepts``, written by ``hoithi streams`` from the catalogue's ``VERSIONS``), and a producer
of a type with more than one accepted version asks the stream's durables before emitting:

- a durable filtering the type without that metadata (made by an older release) accepts only the lowest version;
- the producer emits the highest version that every such durable accepts (no durable: the current one);
- the answer is cached (``TTL``) and refreshed; while NATS cannot be asked, the lowest version (conservative).

So during a roll the old durables hold the producer at the old version; once they are deleted (``hoithi streams
--delete-superseded``, which also brings a kept durable's metadata up to its code) it moves on by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from nats.errors import Error as NatsError

from shared.events.catalogue import CATALOGUE, VERSIONS
from shared.settings import Settings

log = logging.getLogger("hoithi.events.versions")

# The types whose producer asks ``EmitVersions`` before emitting (campaign's person facts). A type emitted at a
# version the previous release's consumers do not accept must be here (tests/integration/
# test_upgrade_event_versions.py checks the catalogue against the previous release).
NEGOTIATED: frozenset[str] = frozenset({"directory.person.changed"})

ACCEPTS = "hoithi-accepts"  # consumer metadata key: JSON {type: [versions]}
TTL = 30.0  # seconds an answer is kept
ASK_TIMEOUT = 2.0


def versions_of(type_: str) -> list[int]:
    """The versions of ``type_`` a producer of this release may emit (accepted ones, up to the current)."""
    current = CATALOGUE[type_].version
    return sorted(v for (t, v) in VERSIONS if t == type_ and v <= current)


def negotiated(type_: str) -> bool:
    """Whether a producer of ``type_`` has a choice (more than one version accepted)."""
    return len(versions_of(type_)) > 1


def accepts_metadata(types: Iterable[str]) -> dict[str, str]:
    """A durable consumer's metadata: the versions this release's code accepts of each type it filters."""
    accepted = {t: sorted(v for (tt, v) in VERSIONS if tt == t) for t in sorted(set(types))}
    return {ACCEPTS: json.dumps(accepted, separators=(",", ":"), sort_keys=True)}


def accepted(metadata: Mapping[str, str] | None) -> dict[str, set[int]] | None:
    """The versions a durable says it accepts, by type; None when it says nothing (an older release made it)."""
    raw = (metadata or {}).get(ACCEPTS)
    if raw is None:
        return None
    try:
        return {t: {int(v) for v in vs} for t, vs in json.loads(raw).items()}
    except (ValueError, TypeError, AttributeError):
        return None


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


@dataclass(frozen=True)
class Durable:
    name: str
    filters: tuple[str, ...]
    metadata: Mapping[str, str] | None


def choose(type_: str, durables: Iterable[Durable], event_prefix: str) -> int:
    """The highest version of ``type_`` every durable filtering it accepts (the lowest when they share none)."""
    versions = versions_of(type_)
    subject = f"{event_prefix}.tenant.{type_}"
    sets = []
    for d in durables:
        if not any(subject_matches(f, subject) for f in d.filters):
            continue
        said = accepted(d.metadata)
        sets.append(said.get(type_, {versions[0]}) if said is not None else {versions[0]})
    common = [v for v in versions if all(v in s for s in sets)]
    return max(common) if common else versions[0]


async def stream_durables(js: object, stream: str) -> list[Durable]:
    """Every durable consumer on ``stream`` with its filters and metadata (ephemeral readers are not asked)."""
    from nats.js.errors import NotFoundError

    try:
        infos = await js.consumers_info(stream)  # type: ignore[attr-defined]
    except NotFoundError:  # no stream yet: no consumer of an older release either
        return []
    out = []
    for info in infos:
        cfg = info.config
        if not cfg.durable_name:
            continue
        filters = tuple(cfg.filter_subjects or ([cfg.filter_subject] if cfg.filter_subject else [">"]))
        out.append(Durable(cfg.durable_name, filters, cfg.metadata))
    return out


@dataclass
class EmitVersions:
    """The producer's side: ``await versions.version(type_)`` before emitting ``type_``. ``ask`` returns the
    stream's durables (by default through a short NATS connection as ``user``)."""

    settings: Settings
    user: str
    ask: Callable[[], Awaitable[list[Durable]]] | None = None
    ttl: float = TTL
    clock: Callable[[], float] = time.monotonic
    _known: list[Durable] | None = None
    _at: float = field(default=float("-inf"))

    async def version(self, type_: str) -> int:
        if not negotiated(type_):
            return CATALOGUE[type_].version
        if self.clock() - self._at >= self.ttl:
            try:
                self._known = await asyncio.wait_for((self.ask or self._ask)(), ASK_TIMEOUT)
            except (OSError, TimeoutError, NatsError) as exc:  # NATS away, no permission: the lowest
                log.warning(
                    "cannot ask NATS which versions the consumers accept (%s): emitting the lowest", exc
                )
                self._known = None
            self._at = self.clock()
        if self._known is None:
            return versions_of(type_)[0]
        return choose(type_, self._known, self.settings.event_prefix)

    async def _ask(self) -> list[Durable]:
        import nats

        from shared.nats_auth import connect_options

        nc = await nats.connect(
            **connect_options(self.settings, self.user),
            connect_timeout=ASK_TIMEOUT,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
        try:
            return await stream_durables(nc.jetstream(), self.settings.stream)
        finally:
            await nc.close()


_PROCESS: dict[tuple[str, str, str], EmitVersions] = {}


def for_process(settings: Settings, user: str) -> EmitVersions:
    """One ``EmitVersions`` per process, stream and user (its cache shared by every request)."""
    key = (settings.nats_url, settings.stream, user)
    if key not in _PROCESS:
        _PROCESS[key] = EmitVersions(settings, user)
    return _PROCESS[key]
