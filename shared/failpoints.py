"""Failpoints: **test-only** hooks that crash a process at a named step, exactly as a power cut or an OOM kill
would (no ``finally``, no shutdown), so the fault tests can prove what survives each window.

``HOITHI_FAILPOINT`` is a comma-separated list of armed names; it is never honoured with
``HOITHI_ENV=production`` (a warning says it was ignored). Names in use:

- ``relay-after-ack`` (shared/outbox.py): the stream acknowledged a batch, the rows are not marked yet;
- ``consumer-before-ack`` (shared/consumer.py): a batch committed, its messages not acknowledged yet;
- ``handler-raises`` (shared/consumer.py): a fact whose subject starts with ``failpoint-oserror`` /
  ``failpoint-timeout`` raises FileNotFoundError / TimeoutError in place of its handler;
- ``notify.before_intent``, ``notify.after_intent``, ``notify.after_smtp``, ``notify.after_mark``
  (services/notify/usecases/delivery.py): the steps of sending one email.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("hoithi.failpoints")

ENV = "HOITHI_FAILPOINT"
_warned = False


def armed(name: str) -> bool:
    """Whether failpoint ``name`` is armed in this process (never in production)."""
    global _warned
    names = {n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()}
    if names and os.environ.get("HOITHI_ENV", "").lower() == "production":
        if not _warned:
            log.warning("%s=%s ignored: failpoints are for tests, never production", ENV, ",".join(sorted(names)))
            _warned = True
        return False
    return name in names


def crash(name: str, what: str = "", *, sigkill: bool = False) -> None:
    """At step ``name``: end this process at once if that failpoint is armed — exit code 137 (what a supervisor
    sees after an OOM kill), or a real SIGKILL with ``sigkill``."""
    if not armed(name):
        return
    log.error("failpoint %s: crashing this process (test-only, %s)%s", name, ENV, f": {what}" if what else "")
    for handler in logging.getLogger().handlers:
        handler.flush()
    if sigkill:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)
