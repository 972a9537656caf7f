"""A FastAPI app whose lifespan fills ``app.state`` and whose routes take a dependency.

``vivace main:app --dev``; in the console ``app.state.items``, ``openapi``, and
``app.dependency_overrides[get_clock] = lambda: "frozen"`` for ``do()``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float


class NewItem(BaseModel):
    name: str
    price: float = 1.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.items = {"tea": Item(name="tea", price=3.5)}
    app.state.pid = os.getpid()
    yield
    app.state.items.clear()


app = FastAPI(title="Store", version="1.2", lifespan=lifespan)


def get_clock() -> str:
    return "real clock"


@app.get("/items", response_model=list[Item], operation_id="list_items")
async def list_items(request: Request) -> list[Item]:
    return list(request.app.state.items.values())


@app.post("/items", status_code=201, operation_id="create_item")
async def create_item(item: NewItem, request: Request) -> Item:
    created = Item(name=item.name, price=item.price)
    request.app.state.items[item.name] = created
    return created


@app.get("/clock", operation_id="read_clock")
async def read_clock(clock: Annotated[str, Depends(get_clock)]) -> dict[str, str]:
    return {"clock": clock, "pid": str(os.getpid())}
