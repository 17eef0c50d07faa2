"""Who may look at `regen serve` (pure check, aiohttp middleware).

Default: bound to 127.0.0.1, no authentication (only this machine can connect). For any other
bind address a token is required (refused at start otherwise, unless --no-auth is given):
programs send `Authorization: Bearer TOKEN`, browsers use HTTP basic auth with any user name
and the token as password. Tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

REALM = 'Basic realm="regen", charset="UTF-8"'


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token` (Bearer, or basic auth's password)."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        _user, sep, password = decoded.partition(":")
        return bool(sep) and hmac.compare_digest(password.encode(), token.encode())
    return False


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(token: str) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not authorized(request.headers.get("Authorization"), token):
            return web.Response(status=401, text="regen serve: a token is required\n",
                                headers={"WWW-Authenticate": REALM})
        return await handler(request)

    return check
