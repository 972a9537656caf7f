"""A Flask (WSGI) app with the corpus every framework app of this directory serves.

WSGI has no lifespan, no websockets and no way to see a disconnect: those routes are absent.
"""

from __future__ import annotations

import common
from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/")
def index() -> Response:
    return Response("hello from flask", content_type="text/plain")


@app.get("/items/<int:item_id>")
def items(item_id: int) -> Response:
    return jsonify({"id": item_id, "q": request.args.get("q")})


@app.post("/echo")
def echo() -> Response:
    body = request.get_data()
    headers = {"x-length": str(len(body))}
    return Response(body, content_type="application/octet-stream", headers=headers)


@app.get("/stream")
def stream() -> Response:
    return Response(common.chunks(), content_type="application/octet-stream")


@app.get("/headers")
def headers() -> Response:
    return jsonify(common.environ_summary(request.environ))
