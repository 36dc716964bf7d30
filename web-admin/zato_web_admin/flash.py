"""One-time messages shown on the page a POST redirects to, carried in a short-lived cookie."""

from __future__ import annotations

import base64
import json

from zato_web_admin.http import Request, Response

COOKIE = 'zato_web_admin_flash'


def set(response: Response, kind: str, text: str, secure: bool = False) -> Response:  # noqa: A001 - module API
    value = base64.urlsafe_b64encode(json.dumps([kind, text[:2000]]).encode()).decode()
    response.set_cookie(COOKIE, value, max_age=60, secure=secure)
    return response


def peek(request: Request) -> tuple[str, str] | None:
    """The message waiting for this page, if any (the page that shows it clears the cookie)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        return None
    if kind not in ('ok', 'error') or not isinstance(text, str):
        return None
    return kind, text
