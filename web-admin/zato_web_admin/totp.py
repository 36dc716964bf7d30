"""TOTP (RFC 6238, 30-second steps, 6 digits) with each code usable once: a code is accepted only
for a step later than the last step accepted for that user."""

from __future__ import annotations

import hmac
import time
import pyotp
import segno

STEP = 30

# Codes of the previous and the next step are accepted too (clock drift), never older ones twice
WINDOW = 1


def new_key() -> str:
    return pyotp.random_base32()


def provisioning_uri(key: str, username: str, label: str) -> str:
    return pyotp.TOTP(key).provisioning_uri(name=username, issuer_name=label)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code an authenticator app can scan."""
    return segno.make(uri, error='m').svg_inline(scale=5, border=2)


def code_at(key: str, step: int) -> str:
    return pyotp.TOTP(key).at(step * STEP)


def accept(key: str, code: str, last_step: int, now: float | None = None) -> int | None:
    """The step `code` belongs to if it is valid now and newer than `last_step`, else None."""
    code = code.strip().replace(' ', '')
    if not key or len(code) != 6 or not code.isdigit():
        return None
    current = int((time.time() if now is None else now) // STEP)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Every candidate is compared, so the time taken says nothing about which one matched
        if hmac.compare_digest(code_at(key, step), code) and step > last_step:
            found = step
    return found
