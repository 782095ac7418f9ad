"""Heavy reads: a request whose answer costs work proportional to a whole edition (a fold of every fact "as of" a
moment, a tally of every assignment) must not stall the service that answers it.

On the event loop such work holds the loop for its whole length — hundreds of milliseconds at thousands of
reports — and the consumer's batch and every other request wait behind it; with several such reads a second the
consumer stops applying facts at all (the rush bench at 2,000 officials: rewards' ledger and campaign's
participation minutes behind, then the connection pool exhausted and 500s). So:

- ``slot(name)``: one heavy read of a kind at a time per process; a reader that cannot start within
  ``WAIT`` seconds is refused — 503 with ``Retry-After``, nothing changed — instead of queuing without bound;
- inside the slot, the CPU-bound part runs in a thread (``asyncio.to_thread``): the loop keeps serving between the
  thread's turns of the GIL. A read whose rows grow with the contest reads them there too
  (``shared.db.read_off_loop``: on SQLite its statements, and the turning of every row into Python, in the
  thread, on a connection of its own), not row by row on the loop.

A read whose cost is a page can need the slot too when a page grows with the contest: rewards' page of the list
names its units' every entry (tens per unit at 20,000 officials), and ten reads a second queued on the loop left
the consumer one step per round of them. Readers then wait for their turn, off the loop, instead of starving
the pipeline the receipts feed.

It bounds the harm; it does not make the read cheap (issue 16: incremental read models).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from shared.errors import DomainError, Refusal

WAIT = 10.0  # seconds a heavy read waits for its turn before it is refused

# What a route that may answer a heavy read declares in its OpenAPI ``responses``.
BUSY = {503: {"description": "computed for other readers at the moment: retry after Retry-After seconds"}}

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def slot(name: str) -> AsyncIterator[None]:
    """The turn of one heavy read of kind ``name`` in this process (see the module)."""
    kinds = _slots.setdefault(asyncio.get_running_loop(), {})
    sem = kinds.setdefault(name, asyncio.Semaphore(1))
    try:
        await asyncio.wait_for(sem.acquire(), WAIT)
    except TimeoutError:
        raise DomainError(
            Refusal.UNAVAILABLE,
            "This report is being computed for other readers; try again shortly.",
            "Báo cáo này đang được tính cho người khác; vui lòng thử lại sau ít phút.",
            code="busy",
            headers={"Retry-After": str(max(1, round(WAIT)))},
        ) from None
    try:
        yield
    finally:
        sem.release()
