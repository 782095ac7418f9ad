"""notify's HTTP routes, one module per resource: a person's in-app messages (``inbox``), the delivery log
(``deliveries``), preferences, webhook subscriptions and reminders. Each router is thin: parse, authorise what
it can without the database, one use case or query of ``usecases/``, the answer."""

from __future__ import annotations

from fastapi import APIRouter

from services.notify.api import deliveries, inbox, preferences, reminders, webhooks

routers: list[APIRouter] = [
    inbox.router,
    deliveries.router,
    preferences.router,
    webhooks.router,
    reminders.router,
]
