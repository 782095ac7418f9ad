"""Campaign's application layer: one function per thing a person or an event can make happen, each a function
of a unit of work (``shared/uow.py``) and a command, plus the queries that read.

- ``directory.py``, ``editions.py``: importing the secretariat's documents, and reading them (the helpers both
  the use cases and the CLI's commands write through: ``documents.py``, ``publishing.py``);
- ``extensions.py``: granting a later deadline; ``assignments.py``: settling an assignment from its facts;
- ``receipts.py``: what submissions' facts make happen (``handlers.py`` calls it);
- ``online.py``: the 90-day campaign (a unit's catalogue, progress reports, figures);
- ``participation.py``: participation as of a moment;
- ``deadlines.py``: the deadline clock (the background job) and where each deadline stands.
"""
