"""A new consumer version starts where the operator says (``hoithi streams --start-sequence N``) instead of
replaying the whole stream, and the version it supersedes is deleted only once the new one has caught up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from shared.settings import Settings
from shared.streams import consumer_configs, stream_configs
from tests.support.servers import TestServers
from tests.support.system import ROOT

OLD = "rewards-facts-v0"  # what the deployment ran before rewards-facts-v1
NEW = "rewards-facts-v1"


@pytest.fixture
def env(test_servers: TestServers, unique_prefix: str) -> Iterator[dict[str, str]]:
    stream = unique_prefix.upper()
    yield {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOITHI_")},
        "HOITHI_ENV": "test",
        "HOITHI_NATS_URL": test_servers.nats_url,
        "HOITHI_EVENT_PREFIX": unique_prefix,
        "HOITHI_DEADLETTER_PREFIX": f"{unique_prefix}-dl",
        "HOITHI_REPLAY_PREFIX": f"{unique_prefix}-replay",
        "HOITHI_STREAM": stream,
        "HOITHI_DEADLETTER_STREAM": f"{stream}_DL",
        "HOITHI_REPLAY_STREAM": f"{stream}_REPLAY",
    }

    async def clean() -> None:
        nc = await nats.connect(test_servers.nats_url)
        js = nc.jetstream()
        for name in (stream, f"{stream}_DL", f"{stream}_REPLAY", f"OBJ_{stream}_ATTACHMENTS"):
            with contextlib.suppress(NotFoundError):  # not created
                await js.delete_stream(name)
        await nc.close()

    asyncio.run(clean())


def _streams(env: dict[str, str], *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "shared.cli", "streams", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        **{k.removeprefix("HOITHI_").lower(): v for k, v in env.items() if k.startswith("HOITHI_")}
    )


async def _on_nats(env: dict[str, str], work: Any) -> Any:
    nc = await nats.connect(env["HOITHI_NATS_URL"])
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()


def test_a_new_version_starts_at_a_sequence_and_replaces_the_old_once_caught_up(env: dict[str, str]) -> None:
    s = _settings(env)
    (stream_cfg, *_) = stream_configs(s)
    (new_cfg,) = [cc for _, cc in consumer_configs(s) if cc.durable_name == NEW]

    async def history(js: Any) -> None:
        # Years of history (here 10 receipts) consumed by the old version, before the upgrade.
        await js.add_stream(stream_cfg)
        for i in range(10):
            await js.publish(f"{s.event_prefix}.t.submission.received", b'{"n": %d}' % i, stream=s.stream)
        old = ConsumerConfig(
            durable_name=OLD, ack_policy=AckPolicy.EXPLICIT, filter_subjects=new_cfg.filter_subjects
        )
        await js.add_consumer(s.stream, old)

    asyncio.run(_on_nats(env, history))

    out = _streams(env, "--start-sequence", "9")
    assert f"consumer {s.stream}/{NEW}: created from #9" in out

    async def pending(js: Any) -> int:
        return int((await js.consumer_info(s.stream, NEW)).num_pending)

    assert asyncio.run(_on_nats(env, pending)) == 2  # #9 and #10, not the 10 of the whole history
    assert f"superseded {s.stream}/{OLD} by {NEW} (2 messages behind)" in out

    # Not caught up yet: asked to delete, it keeps the old version (a rollback binds to it).
    out = _streams(env, "--delete-superseded")
    assert f"kept {s.stream}/{OLD}: {NEW} is still 2 messages behind" in out

    async def consume(js: Any) -> list[int]:
        sub = await js.pull_subscribe_bind(durable=NEW, stream=s.stream)
        msgs = await sub.fetch(batch=10, timeout=5)
        for m in msgs:
            await m.ack_sync()
        return [m.metadata.sequence.stream for m in msgs]

    assert asyncio.run(_on_nats(env, consume)) == [9, 10]

    out = _streams(env)  # not a terminal: it says how, and deletes nothing
    assert f"superseded {s.stream}/{OLD} by {NEW} (caught up)" in out
    assert "hoithi streams --delete-superseded" in out
    out = _streams(env, "--delete-superseded")
    assert f"deleted {s.stream}/{OLD}" in out

    async def names(js: Any) -> set[str]:
        return {c.name for c in await js.consumers_info(s.stream)}

    live = asyncio.run(_on_nats(env, names))
    assert NEW in live and OLD not in live


def test_start_sequence_and_time_together_are_refused(env: dict[str, str]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "shared.cli", "streams", "--start-sequence", "3",
         "--start-time", "2026-01-01T00:00:00+07:00"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2 and "not both" in res.stderr
