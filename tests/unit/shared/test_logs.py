"""Structured logs: a consumer's log lines carry the tenant, edition, event id and correlation id of the
event it handles, as JSON when production or HOITHI_LOG_FORMAT=json says so."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from shared.events.envelope import Envelope
from shared.logs import configure_logging, get_logger
from shared.settings import Settings
from tests.support.consumers import FakeMsg, FakeNC, sqlite_consumer, withdrawn


def test_production_or_log_format_json_means_json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOITHI_JWT_SECRET", "a-production-secret-of-enough-length-0123456789")
    assert Settings(env="production", log_json=False).logs_as_json
    assert Settings(env="production", log_format="console").logs_as_json
    assert Settings(env="development", log_json=False, log_format="json").logs_as_json
    assert not Settings(env="development", log_format="console").logs_as_json


async def test_a_consumer_logs_json_with_tenant_edition_event_and_correlation_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def handler(conn: Any, env: Envelope) -> None:
        get_logger("hoithi.rewards").info("points recomputed", points=3)
        logging.getLogger("hoithi.rewards.std").warning("a stdlib line")

    consumer, engine, _ = await sqlite_consumer(tmp_path, Settings(env="test"), handler)
    consumer.nc = FakeNC()  # type: ignore[assignment]
    configure_logging("rewards", "INFO", json=True)
    env = withdrawn()
    try:
        await consumer.process([FakeMsg(env.to_json())])
    finally:
        await engine.dispose()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    mine = [rec for rec in lines if rec["event"] in ("points recomputed", "a stdlib line")]
    assert len(mine) == 2, lines
    for rec in mine:
        assert rec["service"] == "rewards"
        assert rec["tenant"] == "soctrang-stnmt"
        assert rec["edition"] == "2023"
        assert rec["event_id"] == env.id
        assert rec["event_type"] == "submission.withdrawn"
        assert rec["correlation_id"] == env.correlationid
    # Outside the handler, the event's context is gone.
    get_logger("hoithi.rewards").info("between events")
    after = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert after and "event_id" not in after[-1] and "tenant" not in after[-1]


def test_a_line_logged_once_the_stream_logging_was_configured_with_is_closed_still_reaches_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An app started in-process under one test's capture, a line logged later from another thread (the mail
    sink's SMTP session): it goes to the stderr of that moment, never as "I/O operation on closed file"."""
    import io
    import threading

    first, later = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging("notify", "INFO", json=True)
    first.close()  # that test's capture ended
    monkeypatch.setattr("sys.stderr", later)
    errors: list[BaseException] = []
    monkeypatch.setattr(logging.Handler, "handleError", lambda self, record: errors.append(RuntimeError()))
    thread = threading.Thread(target=lambda: logging.getLogger("mail.log").warning("peer went away"))
    thread.start()
    thread.join()
    assert errors == []
    assert json.loads(later.getvalue())["event"] == "peer went away"
