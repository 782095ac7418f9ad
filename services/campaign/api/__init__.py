"""Campaign's HTTP API (thin routers, one module per resource): each parses, authorises what it can without the
database, builds a command and calls one use case (``services/campaign/usecases/``) through ``shared.uow.run``,
or a query, and shapes the answer. In the order the routes were always served (and documented)."""

from services.campaign.api import directory, documents, editions, online, participation

routers = [directory.router, editions.router, documents.router, participation.router, online.router]
