"""Comments on tasks."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from ..models import Comment, Task, User
from ..schemas import CommentIn, CommentOut
from .common import DB, Paging, get_or_404

router = APIRouter(tags=["comments"])


@router.post("/tasks/{task_id}/comments", response_model=CommentOut, status_code=201)
def add_comment(task_id: int, body: CommentIn, db: DB) -> Comment:
    get_or_404(db, Task, task_id)
    get_or_404(db, User, body.author_id)
    comment = Comment(body=body.body, task_id=task_id, author_id=body.author_id)
    db.add(comment)
    db.commit()
    return comment


@router.get("/tasks/{task_id}/comments", response_model=list[CommentOut])
def task_comments(task_id: int, db: DB, page: Paging) -> list[Comment]:
    get_or_404(db, Task, task_id)
    query = select(Comment).where(Comment.task_id == task_id).order_by(Comment.id)
    return list(db.scalars(query.offset(page.offset).limit(page.limit)))


@router.get("/comments/{comment_id}", response_model=CommentOut)
def read_comment(comment_id: int, db: DB) -> Comment:
    return get_or_404(db, Comment, comment_id)


@router.delete("/comments/{comment_id}", status_code=204)
def delete_comment(comment_id: int, db: DB) -> Response:
    db.delete(get_or_404(db, Comment, comment_id))
    db.commit()
    return Response(status_code=204)


@router.get("/users/{user_id}/comments", response_model=list[CommentOut])
def user_comments(user_id: int, db: DB, page: Paging) -> list[Comment]:
    get_or_404(db, User, user_id)
    query = select(Comment).where(Comment.author_id == user_id).order_by(Comment.id)
    return list(db.scalars(query.offset(page.offset).limit(page.limit)))
