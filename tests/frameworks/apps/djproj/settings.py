"""The smallest Django settings that serve ``djproj.core``'s views (no database is used)."""

from __future__ import annotations

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djproj.urls"
INSTALLED_APPS = ["djproj.core"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
WSGI_APPLICATION = "djproj.wsgi.application"
ASGI_APPLICATION = "djproj.asgi.application"
