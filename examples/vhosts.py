"""Sanic's ``vhosts.py`` example, with the import lines changed: ``vivace examples.vhosts:app``.

curl -H "Host: example.com" localhost:8000
curl -H "Host: sub.example.com" localhost:8000
curl -H "Host: bp.example.com" localhost:8000/question
curl -H "Host: bp.example.com" localhost:8000/answer
"""

from runtime import App as Sanic  # was: from sanic import Sanic
from runtime import response  # was: from sanic import response
from runtime.blueprints import Blueprint  # was: from sanic.blueprints import Blueprint

app = Sanic("Example")
bp = Blueprint("bp", host="bp.example.com")


@app.route("/", host=["example.com", "somethingelse.com", "therestofyourdomains.com"])
async def hello_0(request):
    return response.text("Some defaults")


@app.route("/", host="sub.example.com")
async def hello_1(request):
    return response.text("42")


@bp.route("/question")
async def hello_2(request):
    return response.text("What is the meaning of life?")


@bp.route("/answer")
async def hello_3(request):
    return response.text("42")


app.blueprint(bp)
