"""Campaign's application layer: one function per thing a person or an event can make happen, each a function
of a unit of work (``shared/uow.py``) and a command. Being adopted route by route (``extensions.py`` first)."""
