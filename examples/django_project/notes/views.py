"""The notes app's views: a function view, a class-based view and a detail view over one model."""

from __future__ import annotations

import json
import os
import threading

from django.core.management import call_command
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from examples.django_project.notes.models import Note

_lock = threading.Lock()
_ready = False


def ensure_database() -> None:
    """Create the tables on first use (what ``manage migrate`` does), once per process."""
    global _ready
    if _ready:
        return
    with _lock:
        if not _ready:
            if Note._meta.db_table not in connection.introspection.table_names():
                try:
                    call_command("migrate", verbosity=0, interactive=False)
                except DatabaseError:
                    # another worker migrated at the same moment: fine if the table is there now
                    if Note._meta.db_table not in connection.introspection.table_names():
                        raise
            _ready = True


def index(request: HttpRequest) -> HttpResponse:
    ensure_database()
    return JsonResponse({"hello": "django", "notes": Note.objects.count(), "pid": os.getpid()})


@method_decorator(csrf_exempt, name="dispatch")
class NotesView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        ensure_database()
        return JsonResponse({"notes": [note.as_dict() for note in Note.objects.all()]})

    def post(self, request: HttpRequest) -> HttpResponse:
        ensure_database()
        try:
            text = str(json.loads(request.body)["text"])
        except (ValueError, KeyError, TypeError):
            return JsonResponse({"error": 'send {"text": "..."}'}, status=400)
        note = Note.objects.create(text=text)
        return JsonResponse(note.as_dict(), status=201)


def note(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_database()
    return JsonResponse(get_object_or_404(Note, pk=pk).as_dict())
