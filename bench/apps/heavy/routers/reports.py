"""Reports and the token route: paginated envelopes (a generic pydantic model), the caller's
own data behind a bearer token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import func, select

from ..auth import CurrentUser, issue
from ..models import Comment, Project, Status, Task, User
from ..schemas import CommentOut, ProjectOut, TaskOut, UserOut
from .common import DB, Paging

T = TypeVar("T")

router = APIRouter(tags=["reports"])


class Paginated(BaseModel, Generic[T]):
    items: list[T]
    offset: int
    limit: int
    total: int


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Burndown(BaseModel):
    project_id: int
    open: int
    done: int
    ratio: float
    at: dt.datetime


@router.post("/auth/token", response_model=Token)
def token(db: DB, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    user = db.scalar(select(User).where(User.email == form.username.lower()))
    if user is None or form.password != "bench":
        raise HTTPException(401, "bad credentials")
    return Token(access_token=issue(user.id))


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    return user


@router.get("/me/tasks", response_model=Paginated[TaskOut])
def my_tasks(user: CurrentUser, db: DB, page: Paging) -> Paginated[TaskOut]:
    query = select(Task).join(Task.project).where(Project.owner_id == user.id)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(Task.id).offset(page.offset).limit(page.limit))
    items = [TaskOut.model_validate(row) for row in rows]
    return Paginated[TaskOut](items=items, offset=page.offset, limit=page.limit, total=total)


@router.get("/reports/projects", response_model=Paginated[ProjectOut])
def report_projects(db: DB, page: Paging) -> Paginated[ProjectOut]:
    total = db.scalar(select(func.count()).select_from(Project)) or 0
    rows = db.scalars(select(Project).order_by(Project.id).offset(page.offset).limit(page.limit))
    items = [ProjectOut.model_validate(row) for row in rows]
    return Paginated[ProjectOut](items=items, offset=page.offset, limit=page.limit, total=total)


@router.get("/reports/comments", response_model=Paginated[CommentOut])
def report_comments(db: DB, page: Paging) -> Paginated[CommentOut]:
    total = db.scalar(select(func.count()).select_from(Comment)) or 0
    rows = db.scalars(select(Comment).order_by(Comment.id).offset(page.offset).limit(page.limit))
    items = [CommentOut.model_validate(row) for row in rows]
    return Paginated[CommentOut](items=items, offset=page.offset, limit=page.limit, total=total)


@router.get("/reports/burndown/{project_id}", response_model=Burndown)
def burndown(project_id: int, db: DB) -> Burndown:
    counts = dict.fromkeys(Status, 0)
    query = select(Task.status, func.count()).where(Task.project_id == project_id)
    for status, n in db.execute(query.group_by(Task.status)):
        counts[status] = n
    done = counts[Status.done]
    total = sum(counts.values())
    return Burndown(
        project_id=project_id,
        open=total - done,
        done=done,
        ratio=done / total if total else 0.0,
        at=dt.datetime.now(dt.timezone.utc),
    )
