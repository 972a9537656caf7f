"""ASGI entry point: ``vivace examples.django_project.mysite.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.mysite.settings")

application = get_asgi_application()
