"""Tasks: CRUD, status changes, tags."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response
from sqlalchemy import select

from ..models import Project, Status, Tag, Task
from ..notify import notify
from ..schemas import TagOut, TaskIn, TaskOut, TaskPatch
from .common import DB, Paging, get_or_404

router = APIRouter(tags=["tasks"])


def tags_named(db: DB, names: list[str]) -> list[Tag]:
    tags = []
    for name in dict.fromkeys(names):
        tag = db.scalar(select(Tag).where(Tag.name == name))
        if tag is None:
            tag = Tag(name=name)
            db.add(tag)
        tags.append(tag)
    return tags


@router.post("/projects/{project_id}/tasks", response_model=TaskOut, status_code=201)
def create_task(project_id: int, body: TaskIn, db: DB) -> Task:
    get_or_404(db, Project, project_id)
    task = Task(title=body.title, status=body.status, project_id=project_id)
    task.tags = tags_named(db, body.tags)
    db.add(task)
    db.commit()
    return task


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(db: DB, page: Paging, status: Status | None = None) -> list[Task]:
    query = select(Task).order_by(Task.id)
    if status is not None:
        query = query.where(Task.status == status)
    return list(db.scalars(query.offset(page.offset).limit(page.limit)))


@router.get("/tasks/{task_id}", response_model=TaskOut)
def read_task(task_id: int, db: DB) -> Task:
    return get_or_404(db, Task, task_id)


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def patch_task(task_id: int, body: TaskPatch, db: DB) -> Task:
    task = get_or_404(db, Task, task_id)
    for field, value in body.model_dump(exclude_none=True).items():
        setattr(task, field, value)
    db.commit()
    return task


@router.post("/tasks/{task_id}/done", response_model=TaskOut)
def finish_task(task_id: int, db: DB, background: BackgroundTasks) -> Task:
    task = get_or_404(db, Task, task_id)
    task.status = Status.done
    db.commit()
    background.add_task(notify, "task.done", {"id": task.id, "title": task.title})
    return task


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(task_id: int, db: DB) -> Response:
    db.delete(get_or_404(db, Task, task_id))
    db.commit()
    return Response(status_code=204)


@router.put("/tasks/{task_id}/tags", response_model=TaskOut)
def set_tags(task_id: int, names: list[str], db: DB) -> Task:
    task = get_or_404(db, Task, task_id)
    task.tags = tags_named(db, names)
    db.commit()
    return task


@router.get("/tags", response_model=list[TagOut])
def list_tags(db: DB) -> list[Tag]:
    return list(db.scalars(select(Tag).order_by(Tag.name)))


@router.get("/tags/{name}/tasks", response_model=list[TaskOut])
def tasks_tagged(name: str, db: DB) -> list[Task]:
    return list(db.scalars(select(Task).join(Task.tags).where(Tag.name == name)))
