"""The corpus every framework app of this directory serves, as Django views.

Django has no lifespan and, without channels, no websockets. Under ASGI (Django 5+) an async
view is cancelled when the client goes away, which ``disconnect_probe`` records.
"""

from __future__ import annotations

import asyncio

import common
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
    StreamingHttpResponse,
)


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello from django", content_type="text/plain")


def items(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"id": item_id, "q": request.GET.get("q")})


def echo(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = request.body
    response = HttpResponse(body, content_type="application/octet-stream")
    response["x-length"] = str(len(body))
    return response


def stream(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    # Django serves an iterator of its own kind without a warning: async under ASGI, sync under WSGI
    chunks = common.achunks() if isinstance(request, ASGIRequest) else common.chunks()
    return StreamingHttpResponse(chunks, content_type="application/octet-stream")


def headers(request: HttpRequest) -> HttpResponse:
    if isinstance(request, ASGIRequest):
        return JsonResponse(common.scope_summary(request.scope))
    return JsonResponse(common.environ_summary(request.META))


async def disconnect_probe(request: HttpRequest) -> HttpResponse:
    key = request.GET["key"]
    common.probe_started(key)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        common.disconnected(key)
        raise
    return HttpResponse("never seen by the client")
