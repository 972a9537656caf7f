"""A FastAPI app under vivace: ``vivace examples.fastapi_app:app --dev``, then ENTER.

A lifespan that opens a resource (an in-memory SQLite database here; a connection pool in a real
app), JSON routes that use it, a route that asks vivace which worker answered
(``runtime.multiplexer()``), and a websocket echo. Try, once it runs::

    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/notes
    curl -X POST http://127.0.0.1:8000/notes -H 'content-type: application/json' -d '{"text": "hi"}'
    curl http://127.0.0.1:8000/worker

and in the console: ``client.get("/notes")``, ``routes``, ``do("/notes")``, ``restart()``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

import runtime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs once in every worker before it serves (and once in the console for do()).
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    db.execute("INSERT INTO notes (text) VALUES ('buy milk'), ('call Ada')")
    app.state.db = db
    yield
    db.close()


app = FastAPI(title="notes", lifespan=lifespan)


class NoteIn(BaseModel):
    text: str


class Note(BaseModel):
    id: int
    text: str


def _db(request: Request) -> sqlite3.Connection:
    db: sqlite3.Connection = request.app.state.db
    return db


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/notes", name="notes")
async def list_notes(request: Request) -> list[Note]:
    rows = _db(request).execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    return [Note(id=row[0], text=row[1]) for row in rows]


@app.get("/notes/{note_id}", name="note")
async def get_note(note_id: int, request: Request) -> Note:
    row = _db(request).execute("SELECT id, text FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"no note {note_id}")
    return Note(id=row[0], text=row[1])


@app.post("/notes", name="add_note", status_code=201)
async def add_note(note: NoteIn, request: Request) -> Note:
    cursor = _db(request).execute("INSERT INTO notes (text) VALUES (?)", (note.text,))
    return Note(id=int(cursor.lastrowid or 0), text=note.text)


@app.get("/worker")
async def worker() -> dict[str, object]:
    # runtime.multiplexer() is the worker's handle on vivace's manager (restart, scale, state);
    # it exists in the server workers of a multi-process server only.
    try:
        name = runtime.multiplexer().name
    except RuntimeError:
        name = None
    return {"pid": os.getpid(), "worker": name}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
