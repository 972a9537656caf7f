"""Outgoing webhooks: POST an event to ``HEAVY_WEBHOOK_URL`` when set (never in the benchmarks)."""

from __future__ import annotations

import logging
import os

import httpx

log = logging.getLogger("heavy.notify")
WEBHOOK_URL = os.environ.get("HEAVY_WEBHOOK_URL", "")


async def notify(event: str, data: dict[str, object]) -> None:
    if not WEBHOOK_URL:
        return
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(WEBHOOK_URL, json={"event": event, "data": data})
    except httpx.HTTPError as exc:
        log.warning("webhook %s failed: %s", event, exc)
