"""A minimal Django project under vivace (see mysite/asgi.py)."""
