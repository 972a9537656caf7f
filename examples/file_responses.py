"""File responses the way Sanic's examples use them (``blueprints.py``, "Response types" in the
documentation), with the import lines changed: ``vivace examples.file_responses:app``.

    curl localhost:8000/file                   # the whole file
    curl -OJ localhost:8000/download           # Content-Disposition: attachment
    curl localhost:8000/stream                 # file_stream
"""

from pathlib import Path

from runtime import App as Sanic  # was: from sanic import Sanic
from runtime import Blueprint  # was: from sanic import Blueprint
from runtime.response import file, file_stream  # was: from sanic.response import file, ...

HERE = Path(__file__).parent / "static_site"

app = Sanic("FileResponsesExample")
bp = Blueprint("files_bp", url_prefix="/bp")


@app.route("/file")
async def handler_file(request):
    return await file(HERE / "index.html")


@app.route("/download")
async def handler_download(request):
    return await file(HERE / "css" / "site.css", filename="site.css", max_age=3600)


@app.route("/stream")
async def handler_file_stream(request):
    return await file_stream(HERE / "index.html", chunk_size=1024, mime_type="text/html")


@bp.route("/validated")
async def validated(request):
    # Sanic's way to answer If-Modified-Since with a 304
    return await file(HERE / "index.html", request_headers=request.headers)


app.blueprint(bp)
