"""A realistic FastAPI service for the benchmarks of issue 12 (``bench/asgi_reload.py``,
``bench/asgi_startup.py``): pydantic schemas, SQLAlchemy ORM models on SQLite, about 30 routes in
a few router modules. Serve ``heavy.main:app`` with ``bench/apps`` on the path.

``GET /`` answers ``heavy.routers.health.VERSION`` as plain text: the reload benchmark edits that
line and polls ``/`` until the new value is served.
"""
