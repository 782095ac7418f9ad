"""A nats-server older than 2.10 accepts a consumer with several filter subjects and silently drops them: every
service would receive every event and dead-letter what it has no handler for. ``hoithi streams`` refuses it,
saying what to install. Run against the Debian package's nats-server where this machine has one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nats
import pytest

from shared.devserver import NatsServer
from shared.settings import Settings
from shared.streams import ConsumerConfigDrift, declare

OLD = Path("/usr/sbin/nats-server")


def _old_version() -> str | None:
    if not OLD.exists():
        return None
    out = subprocess.run([str(OLD), "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"v(\d+)\.(\d+)", out)
    return out.strip() if m and (int(m[1]), int(m[2])) < (2, 10) else None


pytestmark = pytest.mark.skipif(
    _old_version() is None, reason="no nats-server older than 2.10 on this machine"
)


async def test_streams_refuses_a_server_that_drops_consumer_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique_prefix: str
) -> None:
    monkeypatch.setenv("HOITHI_NATS_SERVER", str(OLD))
    server = NatsServer(store_dir=tmp_path / "store").start()
    try:
        nc = await nats.connect(server.url)
        try:
            with pytest.raises(ConsumerConfigDrift, match="2.10 or later"):
                await declare(nc.jetstream(), Settings(stream=unique_prefix.upper()))
            # and it leaves no unfiltered consumer behind for a service to bind to
            names = await nc.jetstream().consumers_info(unique_prefix.upper())
            assert [c.name for c in names] == []
        finally:
            await nc.close()
    finally:
        server.stop()
