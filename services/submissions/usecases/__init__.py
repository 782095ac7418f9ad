"""Submissions' application layer: one function per thing a person or an event can make happen, each a
function of a unit of work (``shared/uow.py``) and a command; the routers parse, authorise, call one and shape
the answer. Refusals are ``DomainError`` (no HTTP status): ``shared/problems.py`` maps them."""
