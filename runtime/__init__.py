"""vivace: an async web runtime with a developer console beside the live server."""

__version__ = "0.1.0"
