"""notify's application layer: what a person or an event makes happen, each in one unit of work
(``shared/uow.py``), and the queries the routers read with.

- ``inbox``, ``preferences``, ``webhooks``, ``reminders``, ``deliveries``: the use cases and queries of the
  routes (``api/``);
- ``queue``: writing messages (in-app rows, pending deliveries) inside the caller's transaction, for the
  handlers, the reminders and the timed job;
- ``delivery``: the delivery loop (SMTP send intents, Message-ID, leases) and ``webhook_calls``: where a
  webhook may point and how it is called;
- ``timed``: the daily lists and the 07:30 digests on the business clock;
- ``facts``: what each consumed fact makes happen (``handlers.py`` routes the facts to them).
"""
