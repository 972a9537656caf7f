"""Sanic's ``simple_async_view.py`` example, with the import lines changed:
``vivace examples.class_views:app``.

    curl localhost:8000/
    curl -X POST localhost:8000/
    curl -X PATCH localhost:8000/     # 405, Allow lists the methods the view defines
"""

from runtime import App as Sanic  # was: from sanic import Sanic
from runtime import response  # was: from sanic import response
from runtime.views import HTTPMethodView  # was: from sanic.views import HTTPMethodView

app = Sanic("some_name")


class SimpleView(HTTPMethodView):
    def get(self, request):
        return response.text("I am get method")

    def post(self, request):
        return response.text("I am post method")

    def put(self, request):
        return response.text("I am put method")

    def delete(self, request):
        return response.text("I am delete method")


class SimpleAsyncView(HTTPMethodView):
    async def get(self, request):
        return response.text("I am async get method")

    async def post(self, request):
        return response.text("I am async post method")

    async def put(self, request):
        return response.text("I am async put method")


class GreetingView(HTTPMethodView):
    def __init__(self, greeting):
        self.greeting = greeting

    async def get(self, request, name):
        return response.text(f"{self.greeting}, {name}")


app.add_route(SimpleView.as_view(), "/")
app.add_route(SimpleAsyncView.as_view(), "/async")
app.add_route(GreetingView.as_view("Hello"), "/hello/<name>")
