"""Failpoints: **test-only** hooks that make notify's process SIGKILL itself at a named step of a delivery.

``HOITHI_FAILPOINT=notify.after_intent`` (a comma-separated list may name several) kills the process the first
time a delivery reaches that step, exactly as a crash or an OOM kill would: no ``finally``, no shutdown. The
exactly-once tests use it to crash notify before the intent, after the intent, after the SMTP server accepted
and after the mark. It is never honoured with ``HOITHI_ENV=production`` (a warning says it was ignored).

Steps: ``notify.before_intent``, ``notify.after_intent``, ``notify.after_smtp``, ``notify.after_mark``.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("hoithi.notify.failpoints")

ENV = "HOITHI_FAILPOINT"
STEPS = ("notify.before_intent", "notify.after_intent", "notify.after_smtp", "notify.after_mark")
_warned = False


def armed(production: bool) -> frozenset[str]:
    global _warned
    names = frozenset(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip())
    if names and production:
        if not _warned:
            log.warning("%s=%s ignored: failpoints are for tests, never production", ENV, ",".join(names))
            _warned = True
        return frozenset()
    return names


def hit(name: str, *, production: bool) -> None:
    """At step ``name``: SIGKILL this process if that failpoint is armed (outside production)."""
    if name in armed(production):
        log.error("failpoint %s: killing this process (test-only, %s)", name, ENV)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
