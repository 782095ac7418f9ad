"""Poll with a deadline instead of sleeping: a test waits exactly as long as the system needs, never longer."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["eventually", "eventually_sync", "waiting_on_a_lock"]

T = TypeVar("T")


def _timeout_error(message: str, timeout: float, last: object) -> AssertionError:
    error = AssertionError(f"{message or 'condition not met'} within {timeout}s; last: {last!r}")
    if isinstance(last, BaseException):
        error.__cause__ = last
    return error


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call ``predicate`` (sync or async) until it returns something truthy, and return that.

    An exception in ``retry_on`` counts as "not yet" (the system may still be starting, an assert inside the
    predicate may not hold yet); at the deadline the last value or exception goes into the ``AssertionError``.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
        except retry_on as error:
            last = error
        if time.monotonic() >= deadline:
            raise _timeout_error(message, timeout, last)
        await asyncio.sleep(interval)


def eventually_sync(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """The blocking twin of ``eventually`` for sync tests and fixtures."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except retry_on as error:
            last = error
        if time.monotonic() >= deadline:
            raise _timeout_error(message, timeout, last)
        time.sleep(interval)


async def waiting_on_a_lock(engine: Any) -> int:
    """How many sessions of ``engine``'s PostgreSQL database wait on a lock (writers held by another one)."""
    import sqlalchemy as sa

    async with engine.connect() as conn:
        waiting = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)
