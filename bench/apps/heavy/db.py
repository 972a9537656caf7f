"""The database: one SQLAlchemy engine per process, sessions handed to routes as a dependency.

``HEAVY_DATABASE_URL`` picks the database; the default is an in-memory SQLite database private to
each worker process (one connection shared by the threads of that process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool

DATABASE_URL = os.environ.get("HEAVY_DATABASE_URL", "sqlite+pysqlite:///:memory:")

engine = create_engine(
    DATABASE_URL,
    connect_args={"check_same_thread": False},
    poolclass=StaticPool if ":memory:" in DATABASE_URL else None,
)
SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


def get_db() -> Iterator[Session]:
    with SessionLocal() as session:
        yield session
