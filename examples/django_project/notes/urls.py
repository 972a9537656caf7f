from __future__ import annotations

from django.urls import path

from examples.django_project.notes import views

app_name = "notes"
urlpatterns = [
    path("", views.NotesView.as_view(), name="list"),
    path("<int:pk>/", views.note, name="detail"),
]
