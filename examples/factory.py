"""An app built by a factory: ``vivace examples.factory:create_app --factory --greeting=Hi``.

With ``--factory`` (or ``examples.factory:create_app()``), options vivace does not know are passed
to the factory in the parsed command line, so the app can take its own settings.
"""

from __future__ import annotations

import argparse

from runtime import App, json


def create_app(args: argparse.Namespace | None = None) -> App:
    greeting = getattr(args, "greeting", None) or "Hello"
    app = App("factory_example")
    app.config.GREETING = greeting

    @app.get("/greet/<name>")
    async def greet(request, name: str):
        return json({"message": f"{request.app.config.GREETING}, {name}!"})

    return app
