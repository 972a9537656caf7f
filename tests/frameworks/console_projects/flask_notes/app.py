"""A Flask app with Flask-SQLAlchemy and a shell context processor (``flask shell``'s names).

``python -m flask --app app init-db`` creates the SQLite database beside this file; then
``vivace app:app --dev``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, jsonify
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(__file__).resolve().parent}/notes.db"
db.init_app(app)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String, nullable=False)


@app.shell_context_processor
def shell_names() -> dict[str, object]:
    return {"db": db, "Note": Note}


@app.cli.command("init-db")
def init_db() -> None:
    db.create_all()


@app.teardown_appcontext
def record_teardown(exc: BaseException | None) -> None:
    """Each ended application context that had ``g.mark`` set adds its mark to a file."""
    mark = g.get("mark")
    if mark:
        with (Path(__file__).resolve().parent / "teardowns.txt").open("a") as out:
            out.write(f"{mark}\n")


@app.get("/notes")
def notes() -> object:
    return jsonify(notes=[n.text for n in db.session.scalars(db.select(Note).order_by(Note.id))])
