"""TOTP second factor (RFC 6238 through pyotp): 30-second steps, 6 digits, and a window of one step
either side, so a code is good for 90 seconds at most; each code is accepted once per user.

`matching_step` says which time step a code belongs to; the caller accepts it only by raising the
user's last accepted step to it in one conditional UPDATE (`... WHERE totp_last_step < :step`), so
that of two workers or servers seeing the same code at the same moment exactly one wins.
"""

from __future__ import annotations

import hmac

import pyotp

STEP = 30
WINDOW = 1
DIGITS = 6
DEFAULT_LABEL = 'Zato SSO'


def new_key() -> str:
    """160 random bits from the operating system's CSPRNG, in base32 (what authenticator apps take)."""
    return pyotp.random_base32(32)


def is_valid_key(key: str) -> bool:
    try:
        pyotp.TOTP(key).at(0)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - binascii errors of a bad key, whatever their kind
        return False
    return len(key) >= 16


def provisioning_uri(key: str, username: str, label: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(key).provisioning_uri(name=username, issuer_name=label or DEFAULT_LABEL)


def code_at(key: str, step: int) -> str:
    return pyotp.TOTP(key).at(step * STEP)


def current_step(now: float) -> int:
    return int(now // STEP)


def matching_step(key: str, code: str, now: float) -> int | None:
    """The time step within the window whose code is `code`, else None. Every candidate is compared
    in constant time, so how long it takes says nothing of which one matched."""
    code = (code or '').strip().replace(' ', '')
    if not key or len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now_step = current_step(now)
    found = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if hmac.compare_digest(code_at(key, step), code):
            found = step
    return found
