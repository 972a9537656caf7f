"""Users: create, list, read, rename, delete, and their projects."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..models import Project, User
from ..schemas import ProjectOut, UserIn, UserOut, UserPatch
from .common import DB, Paging, get_or_404

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserIn, db: DB) -> User:
    user = User(email=body.email.lower(), name=body.name)
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise HTTPException(409, f"{body.email} exists") from None
    return user


@router.get("", response_model=list[UserOut])
def list_users(db: DB, page: Paging) -> list[User]:
    query = select(User).order_by(User.id).offset(page.offset).limit(page.limit)
    return list(db.scalars(query))


@router.get("/by-email/{email}", response_model=UserOut)
def user_by_email(email: str, db: DB) -> User:
    user = db.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise HTTPException(404, f"no user {email}")
    return user


@router.get("/{user_id}", response_model=UserOut)
def read_user(user_id: int, db: DB) -> User:
    return get_or_404(db, User, user_id)


@router.patch("/{user_id}", response_model=UserOut)
def patch_user(user_id: int, body: UserPatch, db: DB) -> User:
    user = get_or_404(db, User, user_id)
    if body.name is not None:
        user.name = body.name
    db.commit()
    return user


@router.delete("/{user_id}", status_code=204)
def delete_user(user_id: int, db: DB) -> Response:
    db.delete(get_or_404(db, User, user_id))
    db.commit()
    return Response(status_code=204)


@router.get("/{user_id}/projects", response_model=list[ProjectOut])
def user_projects(user_id: int, db: DB) -> list[Project]:
    get_or_404(db, User, user_id)
    return list(db.scalars(select(Project).where(Project.owner_id == user_id)))
