"""Real projects for the console tests (issue 17): each is copied into a temporary directory and
run there as a user runs it (``vivace shop.asgi:application --dev`` in the project's directory)."""
