"""Static files the way Sanic's documentation shows them ("Static files"), with the import line
changed: ``vivace examples.static_files:app``.

    curl localhost:8000/                       # static_site/index.html (a single file)
    curl localhost:8000/static/css/site.css    # a file of the directory
    curl localhost:8000/browse/                # a directory listing
    curl -H 'Range: bytes=0-3' localhost:8000/static/css/site.css
"""

from pathlib import Path

from runtime import App as Sanic  # was: from sanic import Sanic
from runtime.response import text  # was: from sanic.response import text

HERE = Path(__file__).parent / "static_site"

app = Sanic("StaticFilesExample")

# Serves files from the static folder to the URL /static
app.static("/static", HERE, use_content_range=True)

# Serves the file /static_site/index.html when the URL / is requested
app.static("/", HERE / "index.html", name="main")

# A directory with its listing, under its own name
app.static("/browse", HERE, name="browse", directory_view=True)


@app.get("/where")
async def where(request):
    # url_for with a static name and filename, as in Sanic
    return text(app.url_for("static", name="static", filename="css/site.css"))
