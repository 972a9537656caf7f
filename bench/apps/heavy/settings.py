"""Settings read once from the environment (``HEAVY_*``)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    secret: str = Field(default_factory=lambda: secrets.token_hex(16))
    token_ttl_s: int = 3600
    page_max: int = 500
    cors_origins: list[str] = ["http://localhost:3000"]


@lru_cache
def settings() -> Settings:
    raw = {
        key[len("HEAVY_") :].lower(): value
        for key, value in os.environ.items()
        if key.startswith("HEAVY_") and key != "HEAVY_DATABASE_URL"
    }
    return Settings.model_validate(raw)
