from __future__ import annotations

from django.urls import path
from djproj.core import views

urlpatterns = [
    path("", views.index),
    path("items/<int:item_id>", views.items),
    path("echo", views.echo),
    path("stream", views.stream),
    path("headers", views.headers),
    path("disconnect-probe", views.disconnect_probe),
]
