"""Campaign's HTTP API (thin routers, one module per resource): each parses, authorises what it can without the
database, calls one use case (``services/campaign/usecases/``) or a query, and shapes the answer."""

from services.campaign.api import documents, editions, online

routers = [editions.router, documents.router, online.router]
