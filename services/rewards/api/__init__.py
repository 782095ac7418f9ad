"""rewards' HTTP routes, one module per resource: the priority list and its exports (``priority_list``), the
ledger journal (``ledger``), the rules check and versions (``rules``). Thin routers: the queries they call are
in ``services/rewards/usecases/``."""

from __future__ import annotations

from services.rewards.api import ledger, priority_list, rules

routers = [priority_list.router, ledger.router, rules.router]
