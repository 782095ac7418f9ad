from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import SERVICES
from tests.support.system import System


@pytest.fixture(scope="module")
def system(test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    """The four services on PostgreSQL and the test NATS, loaded with the 2023 seed."""
    import secrets

    prefix = "e" + secrets.token_hex(4)
    work: Path = tmp_path_factory.mktemp("system")
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix=prefix,
        workdir=work,
        database_urls={s: test_servers.create_database(s) for s in SERVICES},
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()
