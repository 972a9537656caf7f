"""Bearer tokens: ``user_id.expiry.signature`` signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordBearer

from .models import User
from .routers.common import DB, get_or_404
from .settings import settings

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def sign(payload: str) -> str:
    key = settings().secret.encode()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def issue(user_id: int) -> str:
    payload = f"{user_id}.{int(time.time()) + settings().token_ttl_s}"
    return f"{payload}.{sign(payload)}"


def current_user(db: DB, token: Annotated[str | None, Depends(bearer)]) -> User:
    if not token or token.count(".") != 2:
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    user_id, expiry, signature = token.split(".")
    if not hmac.compare_digest(sign(f"{user_id}.{expiry}"), signature):
        raise HTTPException(401, "bad token")
    if int(expiry) < time.time():
        raise HTTPException(401, "token expired")
    return get_or_404(db, User, int(user_id))


CurrentUser = Annotated[User, Depends(current_user)]
