"""The priority list (danh sách ưu tiên) as a caller may read it: a query, for the list's routes and exports
(it writes nothing, so no unit of work). The list comes from the read model, or is folded "as of" an instant
(``projection.load_list``); ``view.seen_by`` masks what the caller may not read (``shared.privacy``)."""

from __future__ import annotations

from datetime import datetime

from services.rewards.usecases import projection, view
from shared import heavy
from shared.clock import VN
from shared.errors import DomainError, Refusal
from shared.privacy import Viewer
from shared.service import Caller, Runtime


async def read(
    rt: Runtime,
    caller: Caller,
    tenant: str,
    edition: str,
    as_of: datetime | None,
    unit: str | None = None,
    union: str | None = None,
    role: str | None = None,
    generation: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    ledger: bool = True,
) -> view.PriorityList:
    """The list of ``edition`` as ``caller`` may read it (404 ``generation_not_found``, ``edition_not_found``);
    ``ledger=False``: without the ledger's rows, which are then not built."""
    found = await _list(
        rt, tenant, edition, as_of, unit, union, role, generation, offset=offset, limit=limit, ledger=ledger
    )
    return _seen_by(caller, found)


async def _list(
    rt: Runtime,
    tenant: str,
    edition: str,
    as_of: datetime | None,
    unit: str | None = None,
    union: str | None = None,
    role: str | None = None,
    generation: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    ledger: bool = True,
) -> view.PriorityList:
    at = None if as_of is None else (as_of if as_of.tzinfo else as_of.replace(tzinfo=VN))
    assert rt.copies is not None
    # One read of the list at a time per process, a page or the whole (``shared/heavy.py``), taken before a
    # connection is: a page names its units' every entry, which grows with the contest, and readers queued on the
    # event loop left the consumer a step per round of them (rewards applied 1-3 facts/s under 10 reads/s at
    # 20,000 officials, 192/s without them).
    async with heavy.slot("list-page" if limit is not None else "list"), rt.engine.connect() as conn:
        if generation is not None and await projection.generation_by_id(conn, generation) is None:
            raise DomainError(
                Refusal.NOT_FOUND,
                f"No generation {generation} whose facts are kept.",
                f"Không có thế hệ dữ liệu {generation} còn lưu các sự kiện.",
                code="generation_not_found",
            )
        pl = await projection.load_list(
            conn, rt.backbone, rt.copies, tenant, edition, as_of=at, now=rt.now(),
            unit=unit, union=union, role=role, generation=generation, offset=offset, limit=limit,
            ledger=ledger,
        )  # fmt: skip
    if pl is None:
        raise DomainError(
            Refusal.NOT_FOUND,
            f"No edition {edition!r} is known for tenant {tenant!r}.",
            f"Không có kỳ Hội thi {edition!r} của đơn vị {tenant!r}.",
            code="edition_not_found",
        )
    return pl


def _seen_by(caller: Caller, pl: view.PriorityList) -> view.PriorityList:
    """The list as the caller may read it (``shared.privacy``); unit heads see their unit and its branches."""
    parents = {u.unit_id: u.parent for u in pl.units}
    return view.seen_by(pl, Viewer.with_parents(caller.person_id, caller.person, parents))
