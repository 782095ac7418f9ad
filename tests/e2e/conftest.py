from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import SERVICES
from tests.support.system import System


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def system(request, test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    """The four services on the test NATS, loaded with the 2023 seed: on PostgreSQL (as deployed) and on
    SQLite (the embedded default of ``make run``), the same code paths."""
    import secrets

    prefix = "e" + secrets.token_hex(4)
    work: Path = tmp_path_factory.mktemp("system")
    if request.param == "sqlite":
        dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    else:
        dbs = {s: test_servers.create_database(s) for s in SERVICES}
    sys_ = System(nats_url=test_servers.nats_url, prefix=prefix, workdir=work, database_urls=dbs)
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()
