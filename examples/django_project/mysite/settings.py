"""Settings of the example Django project (development only: the secret key is public).

The project is a package of the repository, so its modules are named from the repository root:
``examples.django_project.mysite.settings``. In your own project they are ``mysite.settings``.
The SQLite database is ``db.sqlite3`` beside this directory, or the file ``NOTES_DB`` names; the
notes app creates its table on first use (or run
``python -m examples.django_project.manage migrate``).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-example-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "examples.django_project.notes",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "examples.django_project.mysite.urls"
WSGI_APPLICATION = "examples.django_project.mysite.wsgi.application"
ASGI_APPLICATION = "examples.django_project.mysite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NOTES_DB") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
