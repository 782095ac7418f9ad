"""Submissions' HTTP edge: thin routers, one module per resource. Each parses, authorises what it can without
the database, builds a command, calls one use case (``services/submissions/usecases/``) through
``shared.uow.run`` — or a query, for a read — and shapes the answer."""

from services.submissions.api import exports, initiatives, reports, review

routers = [reports.router, reports.catalogue_router, initiatives.router, review.router, exports.router]
