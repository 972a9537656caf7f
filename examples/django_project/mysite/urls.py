from __future__ import annotations

from django.urls import include, path

from examples.django_project.notes import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notes/", include("examples.django_project.notes.urls")),
]
