"""A consumer applies an envelope only if it matches the subject it came on and its producer is the catalogue's:
NATS permissions apply to subjects, the handlers dispatch on the envelope's type (issue 14, item 1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.consumer import REPLAY_HEADER
from tests.support.consumers import FakeMsg, withdrawn


@pytest.mark.parametrize(
    ("subject", "source", "why"),
    [
        ("hoithi.soctrang-stnmt.edition.opened", "submissions", "another type than its subject"),
        ("hoithi.other-tenant.submission.withdrawn", "submissions", "another tenant than its subject"),
        ("hoithi.soctrang-stnmt.submission.withdrawn", "campaign", "a producer other than the catalogue's"),
    ],
)
async def test_an_envelope_that_does_not_match_its_subject_or_producer_is_dead_lettered_unapplied(
    harness: Any, subject: str, source: str, why: str
) -> None:
    env = withdrawn("s-9")
    env = env.model_copy(update={"source": f"/hoithi/{source}"})
    forged = FakeMsg(env.to_json(), subject=subject, seq=11)
    await harness.consumer.process([forged])
    assert harness.applied == [], why
    assert forged.log == [("ack", None)]
    [(_, payload, _)] = harness.consumer.nc.js.published
    record = json.loads(payload)["data"]
    assert record["reason"] == "subject_mismatch", why
    assert record["original_subject"] == subject


async def test_a_matching_envelope_and_an_admins_replay_of_it_are_applied(harness: Any) -> None:
    env = withdrawn("s-10")
    await harness.consumer.process([FakeMsg(env.to_json())])
    replay = FakeMsg(
        env.to_json(), subject="hoithi-replay.rewards", headers={REPLAY_HEADER: "r-1", "Nats-Msg-Id": "x"}
    )
    await harness.consumer.process([replay])
    assert harness.applied == [env.id]  # the replay found it in the inbox: no dead letter either
    assert harness.consumer.nc.js.published == []
