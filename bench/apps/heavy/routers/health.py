"""Service routes: the version (edited by the reload benchmark), health, statistics."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from ..models import Comment, Project, Status, Tag, Task, User
from ..schemas import Stats
from .common import DB

VERSION = "0"
STARTED = time.time()

router = APIRouter(tags=["service"])


@router.get("/", response_class=PlainTextResponse)
async def index() -> str:
    return VERSION


@router.get("/health")
async def health() -> dict[str, object]:
    return {"ok": True, "pid": os.getpid(), "uptime": round(time.time() - STARTED, 3)}


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": VERSION}


@router.get("/stats", response_model=Stats)
def stats(db: DB) -> Stats:
    def count(model: type) -> int:
        return db.scalar(select(func.count()).select_from(model)) or 0

    by_status = dict.fromkeys(Status, 0)
    for status, n in db.execute(select(Task.status, func.count()).group_by(Task.status)):
        by_status[status] = n
    return Stats(
        users=count(User),
        projects=count(Project),
        tasks=by_status,
        comments=count(Comment),
        tags=count(Tag),
    )
