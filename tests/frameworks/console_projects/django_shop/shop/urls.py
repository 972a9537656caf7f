from __future__ import annotations

from catalog import views
from django.urls import path

urlpatterns = [
    path("products/", views.products, name="products"),
]
