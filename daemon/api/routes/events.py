"""Server-sent events: the daemon's changes as they happen, replayed from a number."""

from __future__ import annotations

from aiohttp import web

from daemon.api.http import ApiError, Call, QueryParam, Route
from daemon.api.routes.common import GUEST
from daemon.events import SubscriptionEnded

MAX_EVENT_ID = 2**53


async def events(call: Call) -> web.StreamResponse:
    ctx = call.ctx
    after_text = call.request.headers.get("Last-Event-ID")
    after: int | None = None
    if after_text is not None:
        # An event number: digits, at most 2**53 (int() of thousands of digits raises).
        if not (after_text.isascii() and after_text.isdigit() and len(after_text) <= 16):
            raise ApiError(400, "Last-Event-ID: not an event number", field="Last-Event-ID")
        after = int(after_text)
    if call.request.query.get("after") is not None:
        after = int(call.query_number("after", 0, 0, MAX_EVENT_ID))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    with ctx.events.subscribe(after) as subscription:
        await response.prepare(call.request)
        await response.write(f": ferryd {ctx.nodename} events\n\n".encode())
        try:
            while True:
                event = await subscription.next(ctx.sse_keepalive)
                await response.write(event.sse() if event else b": keepalive\n\n")
        except SubscriptionEnded as end:
            await response.write(f"event: end\ndata: {end}\n\n".encode())
        except ConnectionError:
            return response
    return response


EVENTS_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/events",
        events,
        "Server-sent events: action and instance state changes",
        GUEST,
        query=(
            QueryParam(
                "after",
                "integer",
                "Replay the kept events newer than this number.",
                minimum=0,
                maximum=MAX_EVENT_ID,
            ),
        ),
        content_type="text/event-stream",
        errors=(400,),
        tag="events",
    ),
)
