"""Projects: CRUD, search, and the tasks of a project."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from ..models import Project, Status, Task, User
from ..schemas import ProjectIn, ProjectOut, ProjectPatch, TaskOut
from .common import DB, Paging, get_or_404

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, db: DB) -> Project:
    get_or_404(db, User, body.owner_id)
    project = Project(name=body.name, description=body.description, owner_id=body.owner_id)
    db.add(project)
    db.commit()
    return project


@router.get("", response_model=list[ProjectOut])
def list_projects(db: DB, page: Paging) -> list[Project]:
    query = select(Project).order_by(Project.id).offset(page.offset).limit(page.limit)
    return list(db.scalars(query))


@router.get("/search", response_model=list[ProjectOut])
def search_projects(db: DB, q: str = Query(min_length=1)) -> list[Project]:
    return list(db.scalars(select(Project).where(Project.name.contains(q)).limit(100)))


@router.get("/{project_id}", response_model=ProjectOut)
def read_project(project_id: int, db: DB) -> Project:
    return get_or_404(db, Project, project_id)


@router.patch("/{project_id}", response_model=ProjectOut)
def patch_project(project_id: int, body: ProjectPatch, db: DB) -> Project:
    project = get_or_404(db, Project, project_id)
    for field, value in body.model_dump(exclude_none=True).items():
        setattr(project, field, value)
    db.commit()
    return project


@router.delete("/{project_id}", status_code=204)
def delete_project(project_id: int, db: DB) -> Response:
    db.delete(get_or_404(db, Project, project_id))
    db.commit()
    return Response(status_code=204)


@router.get("/{project_id}/tasks", response_model=list[TaskOut])
def project_tasks(project_id: int, db: DB, status: Status | None = None) -> list[Task]:
    get_or_404(db, Project, project_id)
    query = select(Task).where(Task.project_id == project_id)
    if status is not None:
        query = query.where(Task.status == status)
    return list(db.scalars(query.order_by(Task.id)))
