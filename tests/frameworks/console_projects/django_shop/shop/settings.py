"""A Django project with two apps and a SQLite database, for the console tests (issue 17).

``catalog`` and ``orders`` both define a model named ``Item``: ``catalog`` comes first in
``INSTALLED_APPS``, so ``Item`` in the console (as in Django 5.2's ``manage.py shell``) is
``catalog.models.Item``.
"""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "tests-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "catalog",
    "orders",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "shop.urls"
ASGI_APPLICATION = "shop.asgi.application"
WSGI_APPLICATION = "shop.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
