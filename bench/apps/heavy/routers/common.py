"""What the routers share: a typed session dependency, paging, fetch-or-404."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query
from sqlalchemy.orm import Session

from ..db import Base, get_db
from ..schemas import Page

DB = Annotated[Session, Depends(get_db)]
M = TypeVar("M", bound=Base)


def paging(
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Page:
    return Page(offset=offset, limit=limit)


Paging = Annotated[Page, Depends(paging)]


def get_or_404(session: Session, model: type[M], key: int) -> M:
    row = session.get(model, key)
    if row is None:
        raise HTTPException(404, f"{model.__name__} {key} not found")
    return row
