"""The portal's pages. Each page calls the services with the signed-in person's token and renders HTML; every
form works without JavaScript (POST, then a redirect or the form again with the services' errors next to the
fields they name)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.portal import i18n
from services.portal.app import HERE
from services.portal.backend import Backend, ServiceProblem, Unavailable
from shared.auth import issue_token
from shared.directory import ID_PATTERN

router = APIRouter()
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    vn_date=i18n.fmt_date,
    vn_datetime=i18n.fmt_datetime,
)
REPORT_ROWS = 5  # rows the report form offers at first (the edition's minimum of distinct procedures is 5)
MAX_ROWS = 20


class CsrfRefused(Exception):
    pass


class NotSignedIn(Exception):
    pass


# ------------------------------------------------------------------------------------------------- helpers


def lang_of(request: Request) -> str:
    lang = request.session.get("lang", "vi")
    return lang if lang in i18n.LANGS else "vi"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def posted(request: Request) -> dict[str, Any]:
    """The POSTed form, after its CSRF token matched the session's (403 otherwise)."""
    form = await request.form()
    sent = str(form.get("csrf", ""))
    expected = request.session.get("csrf", "")
    if not expected or not secrets.compare_digest(sent, str(expected)):
        raise CsrfRefused()
    return {k: form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k) for k in form}


def user(request: Request) -> dict[str, Any]:
    found = request.session.get("user")
    if not found:
        raise NotSignedIn()
    return dict(found)


def backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


def base(request: Request) -> str:
    u = user(request)
    return f"/tenants/{u['tenant']}/editions/{u['edition']}"


class Reference(dict[str, Any]):
    """The edition document, the people and the units as campaign shows them to the signed-in person."""


async def reference(request: Request) -> Reference:
    """One call for what many pages need alongside their own data: the edition and the directory's units,
    fetched together (concurrently) once per request. People are asked by id (``people_named``): the directory
    of a national contest is too large to fetch for a page."""
    import asyncio

    cached = getattr(request.state, "reference", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    u = user(request)
    b, token, tenant = backend(request), u["token"], u["tenant"]
    edition, units = await asyncio.gather(
        b.get("campaign", f"/tenants/{tenant}/editions/{quote(u['edition'])}", token),
        b.get("campaign", f"/tenants/{tenant}/units", token),
    )
    found = Reference(
        edition=edition,
        units={x["id"]: x.get("name") or x["id"] for x in units},
        part_titles={p["id"]: p.get("title") or p["id"] for p in edition.get("parts", [])},
    )
    request.state.reference = found
    return found


PEOPLE_PER_ASK = 200  # campaign's most ids per ``GET …/people``
PERSON_ID = re.compile(ID_PATTERN)  # what a directory id may be (longer than 64: none either)


async def page_of(
    request: Request, service: str, path: str, params: dict[str, Any], after: str
) -> tuple[Any, str | None]:
    """One page of a service's paged list (``shared/paging.py``): its rows and the cursor of the next page (None:
    the last). ``after`` empty: the first page; a cursor the service refuses (typed, kept from another list):
    the first page too."""
    b, token = backend(request), user(request)["token"]
    asked = {**params, "limit": request.app.state.settings.page_size}
    try:
        found = await b.request(
            service, "GET", path, token, params={**asked, **({"after": after} if after else {})}
        )
    except ServiceProblem as exc:
        if exc.status != 422 or not after:
            raise
        found = await b.request(service, "GET", path, token, params=asked)
    return found.json(), next_cursor(found)


def next_cursor(response: Any) -> str | None:
    """The ``after`` of the next page a service's ``Link`` header names (``shared/paging.py``); None: the last."""
    link = response.headers.get("link", "")
    if not link.endswith('rel="next"'):
        return None
    query = link.split(">", 1)[0].split("?", 1)[-1]
    return dict(parse_qsl(query)).get("after")


async def people_named(request: Request, ids: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """The directory entries of ``ids`` (as campaign shows them to the signed-in person), by id: those a page
    names, asked ``PEOPLE_PER_ASK`` at a time, concurrently. An id not in force today is absent."""
    import asyncio

    u = user(request)
    # a missing id (None, "") names no one, and neither does one no directory could hold (campaign refuses it)
    wanted = sorted({i for i in ids if i and len(i) <= 64 and PERSON_ID.fullmatch(i)})
    chunks = [wanted[i : i + PEOPLE_PER_ASK] for i in range(0, len(wanted), PEOPLE_PER_ASK)]
    path = f"/tenants/{u['tenant']}/people"
    found = await asyncio.gather(
        *(
            backend(request).get(
                "campaign", path, u["token"], params=[("id", i) for i in chunk] + [("limit", len(chunk))]
            )
            for chunk in chunks
        )
    )
    return {p["id"]: p for page in found for p in page}


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    now = request.app.state.clock.now()
    ctx = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.word(key, lang),
        "role_name": lambda role: i18n.role_name(role, lang),
        "deadline_label": lambda v: i18n.deadline_label(v, lang),
        "time_left": lambda v: i18n.time_left(v, now, lang),
        "num": lambda v, d=0: i18n.fmt_number(v, lang, d),
        "csrf": csrf_token(request),
        "me": request.session.get("user"),
        "now": now,
        "path": request.url.path,
        **context,
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def install_errors(app: FastAPI) -> None:
    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "message.html", 403, message=i18n.word("csrf", lang_of(request)))

    @app.exception_handler(NotSignedIn)
    async def _login(request: Request, exc: NotSignedIn) -> Response:
        return RedirectResponse(f"/?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Unavailable)
    async def _down(request: Request, exc: Unavailable) -> Response:
        return render(request, "message.html", 503, message=i18n.word("service_down", lang_of(request)))

    @app.exception_handler(ServiceProblem)
    async def _problem(request: Request, exc: ServiceProblem) -> Response:
        if exc.status == 401:  # the token expired or was refused: sign in again
            request.session.pop("user", None)
            return RedirectResponse("/", status_code=303)
        page = render(request, "message.html", exc.status, message=exc.detail(lang_of(request)))
        if exc.status == 503 and exc.retry_after:  # busy: when to ask again (the live refresh waits so long)
            page.headers["Retry-After"] = exc.retry_after
        return page


# ------------------------------------------------------------------------------------------- health, lang


@router.get("/health/ready", include_in_schema=False)
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/") -> Response:
    request.session["lang"] = code if code in i18n.LANGS else "vi"
    return RedirectResponse(
        next if next.startswith("/") and not next.startswith("//") else "/", status_code=303
    )


# ------------------------------------------------------------------------------------------------ sign-in


def demo_allowed(request: Request) -> bool:
    return request.app.state.shared.env != "production" and request.app.state.settings.demo_login


def oidc_configured(request: Request) -> bool:
    return bool(request.app.state.settings.oidc_issuer and request.app.state.settings.oidc_client_id)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    if not request.session.get("user"):
        own = request.app.state.settings
        return render(
            request,
            "login.html",
            demo=demo_allowed(request),
            oidc=oidc_configured(request),
            form={"tenant": own.tenant, "edition": own.edition, "person": ""},
            errors={},
        )
    return await dashboard(request)


async def _who(request: Request, token: str, person_id: str, tenant: str) -> dict[str, Any] | None:
    """The signed-in person's directory entry (name, unit, roles) as campaign shows it to them; None when there is
    none (an id no directory could hold is refused by campaign's query: no one either)."""
    try:
        people = await backend(request).get(
            "campaign", f"/tenants/{tenant}/people", token, params={"id": person_id, "limit": 1}
        )
    except ServiceProblem as exc:
        if exc.status != 422:
            raise
        return None
    return next((p for p in people if p.get("id") == person_id), None)


def _sign_in(request: Request, token: str, tenant: str, edition: str, person: dict[str, Any]) -> None:
    lang = request.session.get("lang", "vi")
    request.session.clear()  # a new session on sign-in: nothing carried over, a new CSRF token
    request.session.update(
        lang=lang,
        csrf=secrets.token_urlsafe(32),
        user={
            "id": person["id"],
            "name": person.get("name") or person["id"],
            "unit": person.get("unit"),
            "roles": person.get("roles") or [],
            "unions": person.get("unions") or [],
            "tenant": tenant,
            "edition": edition,
            "token": token,
        },
    )


@router.post("/login/demo", response_class=HTMLResponse)
async def demo_login(request: Request) -> Response:
    form = await posted(request)
    lang = lang_of(request)
    if not demo_allowed(request):
        return render(request, "message.html", 403, message=i18n.word("demo_refused", lang))
    values = {k: str(form.get(k, "")).strip() for k in ("tenant", "edition", "person")}
    errors = {k: i18n.word("required", lang) for k, v in values.items() if not v}
    person = None
    if not errors:
        shared = request.app.state.shared
        token = issue_token(shared, values["person"], values["tenant"])
        try:
            person = await _who(request, token, values["person"], values["tenant"])
        except ServiceProblem as exc:
            if exc.status not in (401, 403, 404):
                raise
        if person is None:
            errors["person"] = i18n.word("unknown_person", lang)
    if errors or person is None:
        return render(
            request, "login.html", 422, demo=True, oidc=oidc_configured(request), form=values, errors=errors
        )
    _sign_in(request, token, values["tenant"], values["edition"], person)
    return RedirectResponse("/", status_code=303)


@router.get("/login/oidc")
async def oidc_login(request: Request) -> Response:
    from services.portal import oidc

    return await oidc.start(request)


@router.get("/auth/callback", response_class=HTMLResponse)
async def oidc_callback(request: Request) -> Response:
    from services.portal import oidc

    token, person_id, tenant = await oidc.finish(request)
    own = request.app.state.settings
    person = await _who(request, token, person_id, tenant)
    if person is None:
        return render(request, "message.html", 403, message=i18n.word("unknown_person", lang_of(request)))
    _sign_in(request, token, tenant, own.edition, person)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await posted(request)
    lang = request.session.get("lang", "vi")
    request.session.clear()
    request.session["lang"] = lang
    return RedirectResponse("/", status_code=303)


# ------------------------------------------------------------------------------------------- the official


async def dashboard(request: Request) -> Response:
    u = user(request)
    b = backend(request)
    token = u["token"]
    assignments = await b.get("campaign", f"{base(request)}/assignments?assignee={quote(u['id'])}", token)
    deadlines = await b.get("submissions", f"{base(request)}/deadlines", token)
    reports = await b.get("submissions", f"{base(request)}/experience-reports", token)
    mine = [r for r in reports if r.get("author_id") == u["id"]]
    titles = {d["part"]: d["title"] for d in deadlines}
    open_parts = {d["part"]: d for d in deadlines}
    active = next((r for r in mine if r.get("status") == "submitted"), None)
    return render(
        request,
        "home.html",
        assignments=assignments,
        titles=titles,
        open_parts=open_parts,
        reports=mine,
        active=active,
        experience_open=any(d["kind"] == "experience_report" and d["open"] for d in deadlines),
    )


def _rows(form: dict[str, Any] | None, count: int) -> list[dict[str, str]]:
    if form is None:
        return [{} for _ in range(count)]
    return [
        {
            k: str(form.get(f"p{i}_{k}", "") or "")
            for k in ("code", "used_on", "level", "rating", "narrative", "problems")
        }
        for i in range(count)
    ]


def _rows_of_report(body: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for p in body.get("procedures", []):
        out.append(
            {
                "code": p.get("code", ""),
                "used_on": i18n.fmt_date(p.get("used_on")),
                "level": p.get("level", ""),
                "rating": str(p.get("rating", "")),
                "narrative": p.get("narrative", ""),
                "problems": p.get("problems") or "",
            }
        )
    return out


async def _catalogue(request: Request) -> list[dict[str, str]]:
    """The tenant's procedures (campaign's catalogues in force), one entry per national code with its name —
    two forms of one code (1.011442 and 1.011442.000.00.00.H38) shown as one. The picker is a datalist: the
    browser matches what is typed against the code and the name, without our JavaScript."""
    u = user(request)
    try:
        entries = await backend(request).get("campaign", f"/tenants/{u['tenant']}/procedures", u["token"])
    except ServiceProblem:
        return []
    return [{"code": str(e["code"]), "name": str(e.get("name") or "")} for e in entries]


def _report_body(form: dict[str, Any], count: int, lang: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON the service takes, from the form; errors the portal can tell alone (a date not dd/mm/yyyy)."""
    procedures, errors = [], {}
    for i, row in enumerate(_rows(form, count)):
        if not any(row[k] for k in ("code", "used_on", "narrative")):
            continue  # an empty row is no procedure
        n = len(procedures)
        day = i18n.parse_date_vn(row["used_on"]) if row["used_on"] else None
        if day is None:
            errors[f"procedures[{n}].used_on"] = i18n.word("bad_date", lang)
        entry: dict[str, Any] = {
            "code": row["code"],
            "used_on": day.isoformat() if day else row["used_on"],
            "level": row["level"] or "toan_trinh",
            "rating": int(row["rating"]) if row["rating"].isdigit() else row["rating"],
            "narrative": row["narrative"],
        }
        if row["problems"]:
            entry["problems"] = row["problems"]
        procedures.append(entry)
    return {"procedures": procedures}, errors


def _row_errors(fields: dict[str, str], form: dict[str, Any] | None, count: int) -> dict[str, str]:
    """The services name fields of the JSON (``procedures[2].narrative``): map them to the form's rows, which
    may include empty rows the JSON skipped."""
    rows = _rows(form, count)
    filled = [i for i, r in enumerate(rows) if any(r[k] for k in ("code", "used_on", "narrative"))]
    out: dict[str, str] = {}
    for name, msg in fields.items():
        if name.startswith("procedures[") and "]" in name:
            idx, _, rest = name[len("procedures[") :].partition("]")
            if idx.isdigit() and int(idx) < len(filled):
                key = rest.lstrip(".") or "code"
                out[f"p{filled[int(idx)]}_{key}"] = msg
                continue
        out[name] = msg
    return out


async def _report_form(
    request: Request,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    rows: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    detail: str = "",
    report: dict[str, Any] | None = None,
) -> HTMLResponse:
    count = (
        int(form.get("rows", REPORT_ROWS)) if form and str(form.get("rows", "")).isdigit() else REPORT_ROWS
    )
    count = max(REPORT_ROWS, min(MAX_ROWS, count))
    if rows is None:
        rows = _rows(form, count)
    while len(rows) < count:
        rows.append({})
    return render(
        request,
        "report_form.html",
        status,
        rows=rows,
        errors=errors or {},
        detail=detail,
        catalogue=await _catalogue(request),
        report=report,
        idempotency_key=(form or {}).get("idempotency_key") or str(uuid.uuid4()),
    )


@router.get("/reports/new", response_class=HTMLResponse)
async def new_report(request: Request) -> Response:
    user(request)
    return await _report_form(request)


@router.post("/reports", response_class=HTMLResponse)
async def submit_report(request: Request) -> Response:
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    count = max(REPORT_ROWS, min(MAX_ROWS, int(form.get("rows") or REPORT_ROWS)))
    if form.get("add_row"):
        form["rows"] = str(count + 1)
        return await _report_form(request, form=form)
    body, errors = _report_body(form, count, lang)
    if errors:
        return await _report_form(
            request,
            status=422,
            form=form,
            errors=_row_errors(errors, form, count),
            detail=i18n.word("errors_above", lang),
        )
    try:
        receipt = await backend(request).send(
            "submissions",
            "POST",
            f"{base(request)}/experience-reports",
            u["token"],
            json=body,
            headers={"Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4())},
        )
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        return await _report_form(
            request,
            status=exc.status,
            form=form,
            errors=_row_errors(exc.fields(lang), form, count),
            detail=exc.detail(lang),
        )
    return RedirectResponse(f"/receipts/{quote(receipt['submission_id'])}", status_code=303)


@router.get("/reports/{submission_id}/edit", response_class=HTMLResponse)
async def edit_report(request: Request, submission_id: str) -> Response:
    u = user(request)
    report = await backend(request).get(
        "submissions", f"{base(request)}/experience-reports/{quote(submission_id)}", u["token"]
    )
    return await _report_form(request, rows=_rows_of_report(report.get("body") or {}), report=report)


@router.post("/reports/{submission_id}", response_class=HTMLResponse)
async def revise_report(request: Request, submission_id: str) -> Response:
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    path = f"{base(request)}/experience-reports/{quote(submission_id)}"
    count = max(REPORT_ROWS, min(MAX_ROWS, int(form.get("rows") or REPORT_ROWS)))
    report = await backend(request).get("submissions", path, u["token"])
    if form.get("add_row"):
        form["rows"] = str(count + 1)
        return await _report_form(request, form=form, report=report)
    body, errors = _report_body(form, count, lang)
    if errors:
        return await _report_form(
            request,
            status=422,
            form=form,
            errors=_row_errors(errors, form, count),
            detail=i18n.word("errors_above", lang),
            report=report,
        )
    try:
        await backend(request).send("submissions", "PUT", path, u["token"], json=body)
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        return await _report_form(
            request,
            status=exc.status,
            form=form,
            errors=_row_errors(exc.fields(lang), form, count),
            detail=exc.detail(lang),
            report=report,
        )
    return RedirectResponse(f"/receipts/{quote(submission_id)}", status_code=303)


@router.post("/reports/{submission_id}/withdrawal", response_class=HTMLResponse)
async def withdraw_report(request: Request, submission_id: str) -> Response:
    form = await posted(request)
    u = user(request)
    reason = str(form.get("reason") or "").strip()
    await backend(request).send(
        "submissions",
        "POST",
        f"{base(request)}/experience-reports/{quote(submission_id)}/withdrawal",
        u["token"],
        json={"reason": reason} if reason else None,
    )
    return RedirectResponse(f"/receipts/{quote(submission_id)}", status_code=303)


@router.get("/receipts/{submission_id}", response_class=HTMLResponse)
async def receipt(request: Request, submission_id: str) -> Response:
    u = user(request)
    report = await backend(request).get(
        "submissions", f"{base(request)}/experience-reports/{quote(submission_id)}", u["token"]
    )
    deadlines = await backend(request).get("submissions", f"{base(request)}/deadlines", u["token"])
    titles = {d["part"]: d["title"] for d in deadlines}
    return render(request, "receipt.html", r=report, part_title=titles.get(report.get("part")))


@router.get("/notifications", response_class=HTMLResponse)
async def notifications(request: Request) -> Response:
    u = user(request)
    inbox = await backend(request).get("notify", f"/tenants/{u['tenant']}/inbox", u["token"])
    return render(request, "notifications.html", inbox=inbox)


@router.get("/live")
async def live_updates(request: Request) -> Response:
    """Server-sent events for the signed-in person's tenant: hints only (the event type), no data."""
    from fastapi.responses import StreamingResponse

    u = user(request)
    return StreamingResponse(
        request.app.state.live.stream(u["tenant"]),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


# ----------------------------------------------------------------- dashboards: director, reward council, heads

DASHBOARD_ROLES = ("director", "secretariat", "reward_council", "unit_head", "union_secretary", "admin")
PRIORITY_ROLES = ("director", "secretariat", "reward_council", "admin")
PRIORITY_PAGE = 50  # people on one page of the dashboard's priority list (the workbook holds them all)
ONLINE_ROLES = (
    "director",
    "secretariat",
    "unit_head",
    "admin",
)  # campaign's GET …/online-services reads to these


def _as_of_param(text: str) -> tuple[str | None, str]:
    """The date picker's dd/mm/yyyy → the services' YYYY-MM-DD (None: today); an error message otherwise."""
    if not text.strip():
        return None, ""
    day = i18n.parse_date_vn(text)
    return (day.isoformat(), "") if day else (None, "bad_date")


@router.get("/dashboard", response_class=HTMLResponse)
async def participation_dashboard(
    request: Request, as_of: str = "", page: str = "1", pending_after: str = ""
) -> Response:
    u, lang = user(request), lang_of(request)
    b, token = backend(request), u["token"]
    day, error = _as_of_param(as_of)
    query = f"?as_of={day}" if day else ""
    participation = await b.get("campaign", f"{base(request)}/participation{query}", token)
    ref = await reference(request)
    titles = ref["part_titles"]  # every part, not only intake
    priority, pages = None, None
    if any(r in u["roles"] for r in PRIORITY_ROLES):
        # One page of the list at a time: the whole list of a large contest is the workbook's, not a page's.
        number = int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1
        paged = {
            "limit": PRIORITY_PAGE,
            "offset": (number - 1) * PRIORITY_PAGE,
            **({"as_of": day} if day else {}),
        }
        try:
            priority = await b.get("rewards", f"{base(request)}/priority-list?{urlencode(paged)}", token)
        except ServiceProblem as exc:
            if exc.status not in (403, 404):
                raise
        if priority is not None:
            total = priority["page"]["persons_total"]
            count = max(1, -(-total // PRIORITY_PAGE))
            if number > count:  # past the end (the list shrank, or a typed address): its last page
                return RedirectResponse(f"/dashboard?{urlencode({'as_of': as_of, 'page': count})}", 303)
            pages = {
                "number": number,
                "count": count,
                "first": min(total, (number - 1) * PRIORITY_PAGE + 1),
                "last": min(total, number * PRIORITY_PAGE),
                "total": total,
                "as_of": as_of,
            }
    # who has not submitted yet: the open assignments this person may see (a unit head's unit, a union
    # secretary's members, everything for the secretariat), with names from the directory
    pending, pending_next = [], None
    if any(r in u["roles"] for r in ("unit_head", "union_secretary", "secretariat")):
        # a page at a time: before a deadline a national contest has tens of thousands open
        open_, pending_next = await page_of(
            request,
            "campaign",
            f"{base(request)}/assignments",
            {"status": "open", "assignee_kind": "person"},
            pending_after,
        )
        units = ref["units"]
        people = await people_named(
            request, (a["assignee_id"] for a in open_ if a.get("assignee_kind") == "person")
        )
        for a in open_:
            if a.get("assignee_kind") == "person" and a["assignee_id"] != u["id"]:
                p = people.get(a["assignee_id"], {})
                pending.append(
                    {
                        "id": a["assignee_id"],
                        "part_id": a["part"],
                        "name": p.get("name") or a["assignee_id"],
                        "unit": units.get(a.get("unit_id") or "", a.get("unit_id") or ""),
                        "part": titles.get(a["part"], a["part"]),
                        "deadline": a.get("extended_to") or a["deadline"],
                    }
                )
    return render(
        request,
        "dashboard.html",
        participation=participation,
        titles=titles,
        priority=priority,
        pages=pages,
        pending=pending,
        pending_next=pending_next,
        pending_after=pending_after,
        page_number=page,
        online_link=any(r in u["roles"] for r in ONLINE_ROLES),
        unit_names={x["unit_id"]: x["name"] for x in participation.get("units", [])},
        as_of_text=as_of,
        as_of_error=i18n.word(error, lang) if error else "",
        xlsx_query=query,
        flash=request.session.pop("flash", None),
    )


ONLINE_TARGETS = ("full_process_share_of_eligible", "online_dossier_share", "on_time_share")


@router.get("/online-services", response_class=HTMLResponse)
async def online_services(request: Request, as_of: str = "") -> Response:
    """The 90-day campaign's progress per unit against its targets, as campaign shows it to this person (the
    director and the secretariat: every unit; a unit head: their own; anyone else: campaign's refusal)."""
    u, lang = user(request), lang_of(request)
    day, error = _as_of_param(as_of)
    query = _end_of_day_query(day)
    progress = await backend(request).get("campaign", f"{base(request)}/online-services{query}", u["token"])
    units = (await reference(request))["units"]
    return render(
        request,
        "online_services.html",
        progress=progress,
        targets=ONLINE_TARGETS,
        unit_names=units,
        as_of_text=as_of,
        as_of_error=i18n.word(error, lang) if error else "",
    )


def _end_of_day_query(day: str | None) -> str:
    """The as-of day's query: as of a day is as of the end of that day, and campaign takes an instant (no
    offset = Vietnam time)."""
    return f"?as_of={date.fromisoformat(day) + timedelta(days=1)}T00:00:00" if day else ""


@router.get("/online-services/{unit_id}", response_class=HTMLResponse)
async def online_services_unit(request: Request, unit_id: str, as_of: str = "") -> Response:
    """One unit's 90-day figures per procedure of its catalogue in force on that day (campaign's
    ``GET …/units/{u}/online-services``): the director and the secretariat for any unit, a unit head for their
    own; anyone else, or a unit not in the campaign, gets campaign's refusal."""
    u, lang = user(request), lang_of(request)
    day, error = _as_of_param(as_of)
    path = f"{base(request)}/units/{quote(unit_id, safe='')}/online-services{_end_of_day_query(day)}"
    progress = await backend(request).get("campaign", path, u["token"])
    return render(
        request,
        "online_services_unit.html",
        progress=progress,
        targets=ONLINE_TARGETS,
        level_name=lambda level: i18n.level_name(level, lang),
        as_of_text=as_of,
        as_of_error=i18n.word(error, lang) if error else "",
    )


@router.post("/reminders", response_class=HTMLResponse)
async def remind(request: Request) -> Response:
    """The "remind" action of the "not yet submitted" list: notify reminds the person (in-app and email), at most
    once a day per part; its answer (sent, or already reminded today) is shown above the list."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    body = {"part": str(form.get("part") or ""), "assignees": [str(form.get("assignee") or "")]}
    try:
        await backend(request).send("notify", "POST", f"{base(request)}/reminders", u["token"], json=body)
        name = str(form.get("name") or form.get("assignee") or "")
        request.session["flash"] = {
            "ok": True,
            "text": f"Reminder sent to {name}." if lang == "en" else f"Đã gửi lời nhắc tới {name}.",
        }
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        request.session["flash"] = {"ok": False, "text": exc.detail(lang)}
    return RedirectResponse("/dashboard#pending-title", status_code=303)


@router.get("/priority-list.xlsx")
async def priority_xlsx(request: Request, as_of: str = "") -> Response:
    """The rewards service's workbook, fetched with the person's token (what they may see, `***` otherwise)."""
    u = user(request)
    day, _ = _as_of_param(as_of)
    r = await backend(request).request(
        "rewards", "GET", f"{base(request)}/priority-list.xlsx" + (f"?as_of={day}" if day else ""), u["token"]
    )
    return Response(
        r.content,
        media_type=r.headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="danh-sach-uu-tien-{u["edition"]}.xlsx"'},
    )


# ----------------------------------------------------------------------------------------------- the council

COUNCIL_ROLES = ("council_member", "council_chair", "secretariat", "admin")


async def _rubric(request: Request) -> list[dict[str, Any]]:
    """The edition's criteria (id, title, max) for the initiatives' selection part."""
    for part in (await reference(request))["edition"].get("parts", []):
        if part.get("kind") == "selection" and part.get("rubric"):
            return list(part["rubric"].get("criteria", []))
    return []


@router.get("/council", response_class=HTMLResponse)
async def council(request: Request) -> Response:
    u = user(request)
    b, token = backend(request), u["token"]
    progress = await b.get("submissions", f"{base(request)}/review/progress", token)
    ranking = await b.get("submissions", f"{base(request)}/ranking", token)
    selection = await b.get("submissions", f"{base(request)}/selection", token)
    chair = "council_chair" in u["roles"] or "secretariat" in u["roles"]
    mine = next((m for m in progress.get("members", []) if m["member_id"] == u["id"]), None)
    return render(
        request,
        "council.html",
        progress=progress,
        mine=mine,
        ranking=ranking,
        selection=selection,
        chair=chair,
        errors={},
        detail="",
    )


@router.get("/council/{submission_id}", response_class=HTMLResponse)
async def score_form(request: Request, submission_id: str) -> Response:
    u = user(request)
    initiative = await backend(request).get(
        "submissions", f"{base(request)}/initiatives/{quote(submission_id)}", u["token"]
    )
    return render(
        request, "score.html", i=initiative, criteria=await _rubric(request), form={}, errors={}, detail=""
    )


@router.post("/council/{submission_id}", response_class=HTMLResponse)
async def score_submit(request: Request, submission_id: str) -> Response:
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    criteria = await _rubric(request)
    scores: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for c in criteria:
        raw = str(form.get(f"score_{c['id']}", "")).strip().replace(",", ".")
        try:
            scores[c["id"]] = float(raw)
        except ValueError:
            errors[f"scores.{c['id']}"] = i18n.word("bad_number", lang)
    comment = str(form.get("comment") or "").strip()
    path = f"{base(request)}/initiatives/{quote(submission_id)}"
    if not errors:
        try:
            await backend(request).send(
                "submissions",
                "PUT",
                f"{path}/score-sheet",
                u["token"],
                json={"scores": scores, **({"comment": comment} if comment else {})},
            )
            return RedirectResponse("/council", status_code=303)
        except ServiceProblem as exc:
            if exc.status == 401:
                raise
            errors, detail = exc.fields(lang), exc.detail(lang)
    else:
        detail = i18n.word("errors_above", lang)
    initiative = await backend(request).get("submissions", path, u["token"])
    return render(
        request, "score.html", 422, i=initiative, criteria=criteria, form=form, errors=errors, detail=detail
    )


@router.post("/council-selection", response_class=HTMLResponse)
async def select_initiatives(request: Request) -> Response:
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    chosen = form.get("selected") or []
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    notes = str(form.get("decision_notes") or "").strip()
    try:
        await backend(request).send(
            "submissions",
            "POST",
            f"{base(request)}/selection",
            u["token"],
            json={"selected": chosen, **({"decision_notes": notes} if notes else {})},
            headers={"Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4())},
        )
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        b = backend(request)
        return render(
            request,
            "council.html",
            exc.status,
            progress=await b.get("submissions", f"{base(request)}/review/progress", u["token"]),
            mine=None,
            ranking=await b.get("submissions", f"{base(request)}/ranking", u["token"]),
            selection=await b.get("submissions", f"{base(request)}/selection", u["token"]),
            chair=True,
            errors=exc.fields(lang),
            detail=exc.detail(lang),
        )
    return RedirectResponse("/council", status_code=303)


# ------------------------------------------------------------------------------------------- the secretariat


def _secretariat_only(request: Request) -> Response | None:
    """The secretariat's pages are the secretariat's (and an admin's): anyone else gets a plain 403 page
    before any service is asked (the services refuse them too)."""
    u = user(request)
    if any(r in u.get("roles", []) for r in ("secretariat", "admin")):
        return None
    lang = lang_of(request)
    message = (
        "This page is for the secretariat." if lang == "en" else "Trang này dành cho thường trực Hội thi."
    )
    return render(request, "message.html", 403, message=message)


@router.get("/secretariat", response_class=HTMLResponse)
async def secretariat(request: Request) -> Response:
    return _secretariat_only(request) or render(request, "secretariat.html")


async def _rulings_page(
    request: Request,
    status: int = 200,
    errors: dict[str, str] | None = None,
    detail: str = "",
    after: str = "",
) -> HTMLResponse:
    """Experience reports (a page at a time, in order of receipt) and initiatives (one per unit at most) received:
    the same rejection and reinstatement apply to both."""
    import asyncio

    u, b = user(request), backend(request)
    (reports, reports_next), initiatives, ref = await asyncio.gather(
        page_of(request, "submissions", f"{base(request)}/experience-reports", {}, after),
        b.get("submissions", f"{base(request)}/initiatives", u["token"]),
        reference(request),
    )
    named = await people_named(request, (r.get("author_id") for r in reports))
    people = {pid: p.get("name") for pid, p in named.items()}
    return render(
        request,
        "rulings.html",
        status,
        reports=reports,
        reports_next=reports_next,
        reports_after=after,
        initiatives=[i for i in initiatives if i.get("receipt_number")],  # drafts are not the secretariat's
        people=people,
        units=ref["units"],
        errors=errors or {},
        detail=detail,
    )


@router.get("/secretariat/rulings", response_class=HTMLResponse)
async def rulings(request: Request, after: str = "") -> Response:
    return _secretariat_only(request) or await _rulings_page(request, after=after)


@router.post("/secretariat/{submission_id}/{ruling}", response_class=HTMLResponse)
async def rule(request: Request, submission_id: str, ruling: str) -> Response:
    """Rule a submission ineligible (with a reason) or reverse that ruling; the service's refusal is shown next
    to the reason field of that row."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    if refused := _secretariat_only(request):
        return refused
    if ruling not in ("rejection", "reinstatement"):
        return render(request, "message.html", 404, message=i18n.word("nothing", lang))
    reason = str(form.get("reason") or "").strip()
    after = str(form.get("after") or "")  # the page of reports the ruling was made on
    body = {"reason": reason} if reason or ruling == "rejection" else None
    try:
        await backend(request).send(
            "submissions",
            "POST",
            f"{base(request)}/submissions/{quote(submission_id)}/{ruling}",
            u["token"],
            json=body,
            headers={"Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4())},
        )
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        fields = exc.fields(lang)
        message = fields.get("reason") or next(iter(fields.values()), "") or exc.detail(lang)
        return await _rulings_page(
            request, exc.status, errors={submission_id: message}, detail=exc.detail(lang), after=after
        )
    # back to the page the ruling was made on
    return RedirectResponse(
        "/secretariat/rulings" + (f"?{urlencode({'after': after})}" if after else ""), 303
    )


async def _extensions_page(
    request: Request,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    detail: str = "",
    granted: dict[str, Any] | None = None,
) -> HTMLResponse:
    u = user(request)
    ref = await reference(request)
    assignments = await backend(request).get("campaign", f"{base(request)}/assignments", u["token"])
    extended = [a for a in assignments if a.get("extended_to")]
    named = await people_named(request, (a["assignee_id"] for a in assignments))
    return render(
        request,
        "extensions.html",
        status,
        people={pid: p.get("name") or pid for pid, p in named.items()},
        parts=ref["part_titles"],
        assignees=sorted({a["assignee_id"] for a in assignments}),
        extended=extended,
        form=form or {},
        errors=errors or {},
        detail=detail,
        granted=granted,
    )


@router.get("/secretariat/extensions", response_class=HTMLResponse)
async def extensions(request: Request) -> Response:
    return _secretariat_only(request) or await _extensions_page(request)


@router.post("/secretariat/extensions", response_class=HTMLResponse)
async def grant_extension(request: Request) -> Response:
    """One assignee's later deadline for one part (campaign's extensions route); a refusal is shown next to
    the field it names."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    if refused := _secretariat_only(request):
        return refused
    assignee, part = str(form.get("assignee") or "").strip(), str(form.get("part") or "").strip()
    text, reason = str(form.get("new_deadline") or "").strip(), str(form.get("reason") or "").strip()
    errors: dict[str, str] = {}
    new_deadline = i18n.parse_date_vn(text)
    if new_deadline is None:
        errors["new_deadline"] = (
            "Write a date as dd/mm/yyyy." if lang == "en" else "Nhập ngày theo dạng dd/mm/yyyy."
        )
    found = await backend(request).get(
        "campaign", f"{base(request)}/assignments", u["token"], params={"assignee": assignee, "part": part}
    )
    if not found:
        errors["assignee"] = (
            "This person has no assignment in that part."
            if lang == "en"
            else "Cán bộ này không có phân công trong phần thi đã chọn."
        )
    if errors:
        return await _extensions_page(request, 422, form=form, errors=errors)
    try:
        granted = await backend(request).send(
            "campaign",
            "POST",
            f"{base(request)}/assignments/{quote(found[0]['id'])}/extensions",
            u["token"],
            json={"new_deadline": new_deadline.isoformat() if new_deadline else "", "reason": reason},
            headers={"Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4())},
        )
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        fields = exc.fields(lang)
        return await _extensions_page(request, exc.status, form=form, errors=fields, detail=exc.detail(lang))
    return await _extensions_page(request, granted=granted)


@router.get("/exports/{name}")
async def export(request: Request, name: str) -> Response:
    """The submissions service's exports (XLSX/CSV), fetched with the person's token."""
    u = user(request)
    if name not in ("submissions.xlsx", "submissions.csv", "scores.xlsx", "scores.csv"):
        return render(request, "message.html", 404, message=i18n.word("nothing", lang_of(request)))
    r = await backend(request).request("submissions", "GET", f"{base(request)}/exports/{name}", u["token"])
    return Response(
        r.content,
        media_type=r.headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{u["edition"]}-{name}"'},
    )


# ------------------------------------------------------------- the secretariat: documents and dead letters

DOCUMENT_TYPES = {
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DOCUMENTS = {
    # kind: (page title vi, en; the formats campaign takes; the path it takes them at)
    "editions": (
        "Kỳ Hội thi: kiểm tra và xuất bản",
        "Editions: validate and publish",
        ("yaml", "yml", "json"),
    ),
    "directory": ("Nhập danh bạ", "Directory import", ("csv", "xlsx", "yaml", "yml", "json")),
}


async def _document_page(
    request: Request,
    kind: str,
    status: int = 200,
    errors: list[dict[str, Any]] | None = None,
    detail: str = "",
    result: dict[str, Any] | None = None,
) -> HTMLResponse:
    u = user(request)
    versions: list[dict[str, Any]] = []
    if kind == "editions":
        try:
            versions = await backend(request).get(
                "campaign", f"/tenants/{u['tenant']}/editions/{quote(u['edition'])}/versions", u["token"]
            )
        except ServiceProblem as exc:
            if exc.status not in (403, 404):
                raise
    vi, en, formats = DOCUMENTS[kind]
    return render(
        request,
        "documents.html",
        status,
        kind=kind,
        title=en if lang_of(request) == "en" else vi,
        formats=formats,
        versions=versions,
        problems=errors or [],
        detail=detail,
        result=result,
    )


@router.get("/secretariat/{kind}", response_class=HTMLResponse)
async def document_page(request: Request, kind: str) -> Response:
    user(request)
    if kind not in DOCUMENTS:
        return render(request, "message.html", 404, message=i18n.word("nothing", lang_of(request)))
    return await _document_page(request, kind)


@router.post("/secretariat/{kind}", response_class=HTMLResponse)
async def document_upload(request: Request, kind: str) -> Response:
    """Send an edition document (only validated with "Kiểm tra"; validated, then published as the next version
    with "Xuất bản") or a directory file (all or nothing) to campaign; its refusal is shown line by line (line,
    field, message)."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    if kind not in DOCUMENTS:
        return render(request, "message.html", 404, message=i18n.word("nothing", lang))
    upload = form.get("document")
    filename = str(getattr(upload, "filename", "") or "")
    content = await upload.read() if hasattr(upload, "read") else b""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not content or ext not in DOCUMENTS[kind][2]:
        allowed = ", ".join(f".{f}" for f in DOCUMENTS[kind][2])
        message = f"Choose a file ({allowed})." if lang == "en" else f"Hãy chọn một tệp ({allowed})."
        return await _document_page(
            request, kind, 422, errors=[{"field": "document", "message": message, "message_vi": message}]
        )
    only_check = kind == "editions" and form.get("action") == "validate"
    path = (
        f"/tenants/{u['tenant']}/editions{'?dry_run=true' if only_check else ''}"
        if kind == "editions"
        else f"/tenants/{u['tenant']}/directory/import?format={'yaml' if ext == 'yml' else ext}"
    )
    try:
        result = await backend(request).send(
            "campaign",
            "POST",
            path,
            u["token"],
            content=content,
            headers={
                "Content-Type": DOCUMENT_TYPES[ext],
                "Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4()),
            },
        )
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        errors = exc.body.get("errors") or []
        if ext in ("yaml", "yml", "json"):
            errors = [
                {**e, "line": e.get("line") or i18n.line_of(content, str(e.get("field", "")))} for e in errors
            ]
        return await _document_page(request, kind, exc.status, errors=errors, detail=exc.detail(lang))
    return await _document_page(request, kind, result=result or {})


SERVICES_SHOWN = ("campaign", "submissions", "rewards", "notify")


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request) -> Response:
    """What each service could not apply, and why (read-only; the operator replays with the CLI)."""
    import asyncio

    u = user(request)

    async def one(service: str) -> list[dict[str, Any]]:
        found = await backend(request).get(service, f"/tenants/{u['tenant']}/dead-letters", u["token"])
        return list(found)

    answers = await asyncio.gather(*(one(s) for s in SERVICES_SHOWN), return_exceptions=True)
    records: list[dict[str, Any]] = []
    unavailable: list[str] = []
    for service, answer in zip(SERVICES_SHOWN, answers, strict=True):
        if isinstance(answer, ServiceProblem) and answer.status == 403:
            raise answer
        if isinstance(answer, BaseException):
            unavailable.append(service)
            continue
        records += answer
    records.sort(key=lambda r: str(r.get("recorded_at")), reverse=True)
    return render(request, "dead_letters.html", records=records, unavailable=unavailable)


# -------------------------------------------------------------------- the unit head: the unit's initiative

INITIATIVE_TEXTS = (
    # field, Vietnamese label, English label, long text
    ("title", "Tên sáng kiến", "Title", False),
    ("field_of_application", "Lĩnh vực áp dụng", "Field of application", False),
    ("existing_solution", "Giải pháp đã biết", "Known solution", True),
    ("existing_weaknesses", "Ưu, nhược điểm của giải pháp đã biết", "Weaknesses of the known solution", True),
    ("new_solution", "Nội dung giải pháp mới", "The new solution", True),
    ("novelty", "Tính mới", "Novelty", True),
    ("applicability", "Khả năng áp dụng", "Applicability", True),
    ("benefits", "Lợi ích thu được", "Benefits", True),
)
CO_AUTHOR_ROWS = 3


def _initiative_form(
    form: dict[str, Any] | None, initiative: dict[str, Any] | None, me: str
) -> dict[str, str]:
    """What the form shows: what was typed, else the initiative as stored, else empty (my share 100)."""
    if form is not None:
        return {k: str(v or "") for k, v in form.items() if isinstance(v, str | int | float) or v is None}
    out: dict[str, str] = {"my_share": "100"}
    if initiative:
        out.update({k: str(initiative.get(k) or "") for k, *_ in INITIATIVE_TEXTS})
        out["benefits_kind"] = str(initiative.get("benefits_kind") or "actual")
        out["first_applied_on"] = i18n.fmt_date(initiative.get("first_applied_on"))
        others = [a for a in initiative.get("authors", []) if a.get("person_id") != me]
        mine = next((a for a in initiative.get("authors", []) if a.get("person_id") == me), None)
        out["my_share"] = str((mine or {}).get("share", ""))
        for i, a in enumerate(others[:CO_AUTHOR_ROWS]):
            out[f"author{i}_id"] = str(a.get("person_id") or "")
            out[f"author{i}_share"] = str(a.get("share", ""))
    return out


def _initiative_body(form: dict[str, Any], me: str, lang: str) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {k: str(form.get(k) or "").strip() for k, *_ in INITIATIVE_TEXTS}
    body["benefits_kind"] = "expected" if form.get("benefits_kind") == "expected" else "actual"
    day_text = str(form.get("first_applied_on") or "").strip()
    if day_text:
        day = i18n.parse_date_vn(day_text)
        if day is None:
            errors["first_applied_on"] = i18n.word("bad_date", lang)
        else:
            body["first_applied_on"] = day.isoformat()

    def share(key: str) -> float | str:
        raw = str(form.get(key) or "").strip().replace(",", ".")
        try:
            return float(raw)
        except ValueError:
            errors[key] = i18n.word("bad_number", lang)
            return raw

    authors = [{"person_id": me, "share": share("my_share")}]
    for i in range(CO_AUTHOR_ROWS):
        pid = str(form.get(f"author{i}_id") or "").strip()
        if pid:
            authors.append({"person_id": pid, "share": share(f"author{i}_share")})
    body["authors"] = authors
    return body, errors


def _initiative_errors(fields: dict[str, str], form: dict[str, Any]) -> dict[str, str]:
    """The service names ``authors[1].share``: the form's row of that co-author (row 0 is me)."""
    out: dict[str, str] = {}
    filled = [i for i in range(CO_AUTHOR_ROWS) if str(form.get(f"author{i}_id") or "").strip()]
    for name, msg in fields.items():
        if name.startswith("authors[") and "]" in name:
            idx, _, rest = name[len("authors[") :].partition("]")
            key = "share" if rest.endswith("share") else "id"
            if idx == "0":
                out["my_share"] = msg
                continue
            if idx.isdigit() and 0 < int(idx) <= len(filled):
                out[f"author{filled[int(idx) - 1]}_{key}"] = msg
                continue
            out["authors"] = msg
            continue
        out[name] = msg
    return out


async def _initiatives(request: Request) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The unit's initiative (the one a unit head works on) and those I am invited to co-author."""
    u = user(request)
    found = await backend(request).get("submissions", f"{base(request)}/initiatives", u["token"])
    mine = next(
        (i for i in found if i.get("unit_id") == u.get("unit") and i.get("status") in ("draft", "submitted")),
        None,
    )
    if mine is not None:  # the list leaves attachments out
        path = f"{base(request)}/initiatives/{quote(mine['submission_id'])}"
        mine = await backend(request).get("submissions", path, u["token"])
    invited = [
        i
        for i in found
        if any(a.get("person_id") == u["id"] and not a.get("confirmed", True) for a in i.get("authors", []))
    ]
    return mine, invited


async def _initiative_page(
    request: Request,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    detail: str = "",
) -> HTMLResponse:
    u = user(request)
    mine, invited = await _initiatives(request)
    shown = [*invited, *([mine] if mine else [])]
    people = await people_named(
        request,
        [
            *(i.get("created_by") for i in invited),
            *(a.get("person_id") for i in shown for a in i.get("authors", [])),
        ],
    )
    return render(
        request,
        "initiative.html",
        status,
        i=mine,
        invited=invited,
        people=people,
        texts=INITIATIVE_TEXTS,
        rows=CO_AUTHOR_ROWS,
        form=_initiative_form(form, mine, u["id"]),
        errors=errors or {},
        detail=detail,
        flash=request.session.pop("flash", None),
        is_head="unit_head" in u["roles"],
    )


@router.get("/initiative", response_class=HTMLResponse)
async def initiative(request: Request) -> Response:
    user(request)
    return await _initiative_page(request)


@router.post("/initiative", response_class=HTMLResponse)
async def save_initiative(request: Request) -> Response:
    """Save the unit's initiative as a draft (create, or revise the one there is); co-authors are invited and
    must confirm on their own page."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    body, errors = _initiative_body(form, u["id"], lang)
    if errors:
        return await _initiative_page(request, 422, form, errors, i18n.word("errors_above", lang))
    mine, _ = await _initiatives(request)
    try:
        if mine is None:
            await backend(request).send(
                "submissions",
                "POST",
                f"{base(request)}/initiatives",
                u["token"],
                json={**body, "submit": False},
                headers={"Idempotency-Key": str(form.get("idempotency_key") or uuid.uuid4())},
            )
        else:
            path = f"{base(request)}/initiatives/{quote(mine['submission_id'])}"
            await backend(request).send("submissions", "PUT", path, u["token"], json=body)
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        return await _initiative_page(
            request, exc.status, form, _initiative_errors(exc.fields(lang), form), exc.detail(lang)
        )
    request.session["flash"] = {"ok": True, "text": "Saved." if lang == "en" else "Đã lưu bản nháp."}
    return RedirectResponse("/initiative", status_code=303)


@router.post("/initiative/{submission_id}/{action}", response_class=HTMLResponse)
async def initiative_action(request: Request, submission_id: str, action: str) -> Response:
    """Submit the draft, attach a file (a plain form upload; the script adds a progress bar), or confirm
    being a co-author."""
    form = await posted(request)
    u, lang = user(request), lang_of(request)
    path = f"{base(request)}/initiatives/{quote(submission_id)}"
    try:
        if action == "submission":
            done = await backend(request).send("submissions", "POST", f"{path}/submission", u["token"])
            text = f"Đã nộp sáng kiến. Số biên nhận: {done['receipt_number']}."
            if lang == "en":
                text = f"Submitted. Receipt number: {done['receipt_number']}."
        elif action == "attachments":
            upload = form.get("file")
            name = str(getattr(upload, "filename", "") or "")
            content = await upload.read() if hasattr(upload, "read") else b""
            if not name or not content:
                message = "Choose a file." if lang == "en" else "Hãy chọn một tệp."
                return await _initiative_page(request, 422, errors={"file": message}, detail=message)
            await backend(request).send(
                "submissions",
                "POST",
                f"{path}/attachments?filename={quote(name)}",
                u["token"],
                content=content,
                headers={"Content-Type": "application/octet-stream", "Idempotency-Key": str(uuid.uuid4())},
            )
            text = f"Attached {name}." if lang == "en" else f"Đã đính kèm tệp {name}."
        elif action == "confirmation":
            await backend(request).send(
                "submissions", "POST", f"{path}/authors/{quote(u['id'])}/confirmation", u["token"]
            )
            text = "Confirmed." if lang == "en" else "Đã xác nhận là đồng tác giả."
        else:
            return render(request, "message.html", 404, message=i18n.word("nothing", lang))
    except ServiceProblem as exc:
        if exc.status == 401:
            raise
        key = "file" if action == "attachments" else action
        return await _initiative_page(
            request, exc.status, errors={key: exc.detail(lang), **exc.fields(lang)}, detail=exc.detail(lang)
        )
    request.session["flash"] = {"ok": True, "text": text}
    return RedirectResponse("/initiative", status_code=303)
