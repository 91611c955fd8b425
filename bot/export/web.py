"""Web pages: ``/incidents`` (filters), ``/incidents/INC-n`` (SVG timeline, paginated
events) and ``/incidents/INC-n/postmortem.md|.json|.html`` (streamed downloads).

All of them sit behind ``WEB_AUTH_TOKEN``: ``Authorization: Bearer <token>``, or
``?token=<token>`` once, which sets a session cookie and redirects to the same
page without the token in its address. Without ``WEB_AUTH_TOKEN`` the pages are
disabled (404 saying so). The cookie holds an HMAC of the token, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from bot.config import Settings
from bot.export import html as pages
from bot.export import pipeline
from bot.export import service as exports
from bot.export.document import Moment, event_row
from bot.incidents.models import IncidentState
from bot.incidents.service import IncidentNotFound
from bot.playbooks.models import Severity

SESSION_COOKIE = "firebreak_session"
PER_PAGE = 100
MAX_PER_PAGE = 500
_KEY = re.compile(r"^(?:INC-?)?(\d{1,9})$", re.IGNORECASE)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ExporterFactory = Callable[[web.Request], pipeline.Exporter]


def incident_url(settings: Settings, key: str, suffix: str = "") -> str | None:
    """The address of an incident's web page (``suffix``: e.g. ``/postmortem.html``), or None
    when the pages are off (no ``WEB_AUTH_TOKEN``) or the bot's public URL is not known."""
    if not (settings.public_base_url and settings.web_auth_token):
        return None
    return f"{settings.public_base_url.rstrip('/')}/incidents/{key}{suffix}"


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"firebreak-web-session-v1", hashlib.sha256).hexdigest()


async def message_page(status: int, title: str, message: str, *, hint: str | None = None,
                       headers: dict[str, str] | None = None, sign_in: str | None = None) -> web.Response:
    """A page that says one thing; with ``sign_in`` (a path), a form to sign in there."""
    body = await pages.render("message.html", title=title, message=message, hint=hint, sign_in=sign_in)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers={**SECURITY_HEADERS, **(headers or {})})


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


async def check_auth(request: web.Request, token: str | None) -> web.StreamResponse | None:
    """None when the request may proceed; otherwise the response to send instead."""
    if not token:
        return await message_page(
            404, "Web pages are disabled",
            "Firebreak's web pages and downloads are turned off because WEB_AUTH_TOKEN is not set.",
            hint="Set WEB_AUTH_TOKEN and restart Firebreak; /healthz, /readyz and /metrics stay open.")
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return None
    given = request.query.get("token")
    if given is not None:
        if hmac.compare_digest(given.encode(), token.encode()):
            target = request.rel_url.without_query_params("token")
            response = web.HTTPFound(location=str(target), headers=SECURITY_HEADERS)
            response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="Lax",
                                secure=_secure(request), path="/")
            return response
        return await _unauthorized(request, "That token is not right.")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return None
    return await _unauthorized(request, "This page of Firebreak (incidents, timelines and post-mortems) "
                                        "is for people who have its web token.")


async def _unauthorized(request: web.Request, problem: str) -> web.Response:
    return await message_page(
        401, "Sign-in needed", problem,
        hint="Ask whoever runs Firebreak for the web token (its WEB_AUTH_TOKEN setting) and paste it "
             "here: a session cookie then keeps you signed in, on this browser, for every page. "
             "Scripts send the header 'Authorization: Bearer <token>' instead.",
        headers={"WWW-Authenticate": 'Bearer realm="firebreak"'},
        sign_in=str(request.rel_url.without_query_params("token")))


def _sign_in(token_of: Callable[[web.Request], str | None]) -> Handler:
    """POST of the sign-in form: the token in the body (never in an address a proxy may log);
    a right one sets the session cookie and goes back to the page (303, then GET)."""
    async def sign_in(request: web.Request) -> web.StreamResponse:
        token = token_of(request)
        if not token:
            return await check_auth(request, token)  # pages are off: say so
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return await _unauthorized(request, "That token is not right.")
        response = web.HTTPSeeOther(location=str(request.rel_url.without_query_params("token")),
                                    headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="Lax",
                            secure=_secure(request), path="/")
        return response

    return sign_in


def protected(token_of: Callable[[web.Request], str | None]) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = await check_auth(request, token_of(request))
            if refused is not None:
                return refused
            return await handler(request)

        guarded.__name__ = handler.__name__
        return guarded

    return decorate


def parse_key(text: str) -> int | None:
    match = _KEY.match(text.strip())
    return int(match.group(1)) if match else None


def _int(value: str | None, default: int, *, low: int = 1, high: int = 10**9) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        return default


class IncidentPages:
    """The handlers, given a way to build an :class:`~bot.export.pipeline.Exporter`."""

    def __init__(self, exporter_for: ExporterFactory, *, svg_cache_size: int = 32) -> None:
        self.exporter_for = exporter_for
        self.svg_cache_size = svg_cache_size
        self._svgs: OrderedDict[tuple, str] = OrderedDict()

    async def _svg(self, exporter: pipeline.Exporter, prepared: pipeline.Prepared) -> str:
        """The SVG timeline, reused while nothing changed: paging through a long
        timeline does not re-read every event for the drawing each time."""
        incident = prepared.incident
        now = exporter.clock.now()
        key = (incident.id, prepared.snapshot.max_id, prepared.snapshot.count, incident.updated_at,
               None if incident.resolved_at else int(now.timestamp() // 60))
        drawing = self._svgs.get(key)
        if drawing is None:
            drawing = await pipeline.build_svg(exporter, prepared, now=now)
            self._svgs[key] = drawing
            while len(self._svgs) > self.svg_cache_size:
                self._svgs.popitem(last=False)
        self._svgs.move_to_end(key)
        return drawing

    async def incident_list(self, request: web.Request) -> web.StreamResponse:
        exporter = self.exporter_for(request)
        try:
            states = [IncidentState(v) for v in request.query.getall("state", []) if v]
            severities = [Severity(v.upper()) for v in request.query.getall("severity", []) if v]
        except ValueError:
            return await message_page(
                400, "Unknown filter",
                "state is one of open, acknowledged, mitigated, resolved; severity one of P0..P3.")
        service = request.query.get("service") or None
        page = _int(request.query.get("page"), 1)
        async with exporter.sessions() as session:
            result = await exports.search_incidents(session=session, states=states,
                                                    severities=severities, service=service,
                                                    page=page, per_page=50)
            services = await exports.known_services(session=session)
        zone = exporter.zone
        scrub = exporter.scrub
        rows = [{"key": i.key, "severity": i.severity.value, "state": i.state.value,
                 "service": i.service, "title": scrub(i.title), "opened": Moment(i.opened_at, zone)}
                for i in result.incidents]
        query = urlencode([("state", s.value) for s in states]
                          + [("severity", s.value) for s in severities]
                          + ([("service", service)] if service else []))
        body = await pages.render(
            "incidents.html", rows=rows, result=result, zone=zone,
            shows_local=zone.key not in ("UTC", "Etc/UTC"),
            all_states=[s.value for s in IncidentState], all_severities=[s.value for s in Severity],
            all_services=services, chosen_states=[s.value for s in states],
            chosen_severities=[s.value for s in severities], chosen_service=service, query=query)
        return web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers=SECURITY_HEADERS)

    async def _prepared(self, request: web.Request) -> pipeline.Prepared | web.Response:
        number = parse_key(request.match_info["key"])
        if number is None:
            return await message_page(404, "Not found", "Incidents are named like INC-12.")
        try:
            return await pipeline.prepare(self.exporter_for(request), number=number)
        except IncidentNotFound:
            return await message_page(404, "Not found", f"There is no incident INC-{number}.")

    async def incident_page(self, request: web.Request) -> web.StreamResponse:
        prepared = await self._prepared(request)
        if isinstance(prepared, web.Response):
            return prepared
        exporter = self.exporter_for(request)
        per_page = _int(request.query.get("per_page"), PER_PAGE, high=MAX_PER_PAGE)
        total_pages = max(1, -(-prepared.snapshot.count // per_page))
        page = _int(request.query.get("page"), 1, high=total_pages)
        async with exporter.sessions() as session:
            events = await exports.timeline_page(session=session, incident=prepared.incident,
                                                 page=page, per_page=per_page)
        users, channels = pipeline.event_ids(events)
        await exporter.names.resolve(users=users, channels=channels)
        scrub = exporter.scrub
        first = (page - 1) * per_page
        rows = [event_row(e, first + index + 1, exporter.names, exporter.zone, scrub)
                for index, e in enumerate(events)]
        timeline_svg = await self._svg(exporter, prepared)
        response = web.StreamResponse(headers={**SECURITY_HEADERS,
                                               "Content-Type": "text/html; charset=utf-8"})
        await response.prepare(request)
        async for block in pipeline.buffered(pages.page(
                "incident.html", doc=prepared.doc, rows=rows, timeline_svg=timeline_svg,
                page=page, pages=total_pages, per_page=per_page,
                pager_suffix="" if per_page == PER_PAGE else f"&per_page={per_page}")):
            await response.write(block)
        await response.write_eof()
        return response

    async def download(self, request: web.Request) -> web.StreamResponse:
        fmt = request.match_info["format"]
        prepared = await self._prepared(request)
        if isinstance(prepared, web.Response):
            return prepared
        exporter = self.exporter_for(request)
        filename = f"{prepared.doc.key}-postmortem.{pipeline.EXTENSIONS[fmt]}"
        disposition = "inline" if fmt == "html" else "attachment"
        response = web.StreamResponse(headers={
            **SECURITY_HEADERS, "Content-Type": pipeline.MEDIA_TYPES[fmt],
            "Content-Disposition": f'{disposition}; filename="{filename}"'})
        await response.prepare(request)
        async for block in pipeline.buffered(pipeline.stream(exporter, prepared, fmt)):
            await response.write(block)
        await response.write_eof()
        return response


def add_routes(app: web.Application, *, exporter_for: ExporterFactory,
               token_of: Callable[[web.Request], str | None]) -> None:
    handlers = IncidentPages(exporter_for)
    guard = protected(token_of)
    sign_in = _sign_in(token_of)
    for path, handler in (("/incidents", handlers.incident_list), ("/incidents/{key}", handlers.incident_page),
                          (r"/incidents/{key}/postmortem.{format:md|json|html}", handlers.download)):
        app.router.add_get(path, guard(handler))
        app.router.add_post(path, sign_in)
