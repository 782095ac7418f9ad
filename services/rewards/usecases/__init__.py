"""Rewards' application layer: what a fact or a person makes happen, over its database.

``projection`` folds each kept fact into the ledger, its journal and the incremental read model (``readmodel``),
in the consumer's transaction; ``rebuild`` re-reads the stream into a fresh generation; ``standings_job`` is the
background job that folds what lags; ``view`` is the list as people read it and its exports; ``priority_list``,
``ledger`` and ``rules`` are the queries the routers (``services/rewards/api/``) call. Refusals are
``DomainError`` (no HTTP status): ``shared/problems.py`` maps them."""
