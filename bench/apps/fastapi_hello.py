"""The FastAPI hello of ``bench/asgi_throughput.py``: ``GET / -> {"hello": "world"}``."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}
