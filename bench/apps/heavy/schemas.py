"""Pydantic schemas: what the routes accept and return."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from .models import Status


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserIn(BaseModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=100)


class UserPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class UserOut(ORM):
    id: int
    email: str
    name: str
    created: dt.datetime | None = None


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    owner_id: int


class ProjectPatch(BaseModel):
    name: str | None = None
    description: str | None = None


class ProjectOut(ORM):
    id: int
    name: str
    description: str
    owner_id: int


class TagOut(ORM):
    id: int
    name: str


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    status: Status = Status.todo
    tags: list[str] = []


class TaskPatch(BaseModel):
    title: str | None = None
    status: Status | None = None


class TaskOut(ORM):
    id: int
    title: str
    status: Status
    project_id: int
    tags: list[TagOut] = []


class CommentIn(BaseModel):
    body: str = Field(min_length=1)
    author_id: int


class CommentOut(ORM):
    id: int
    body: str
    task_id: int
    author_id: int


class Page(BaseModel):
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=500)


class Stats(BaseModel):
    users: int
    projects: int
    tasks: dict[Status, int]
    comments: int
    tags: int
