"""The identifiers pub/sub hands out: message ids and subscription keys, each with 128 random bits
from `secrets`. A sub_key is a bearer secret (whoever has it reads the queue): 3.1's had 24 random
bits, guessable in an afternoon."""

from __future__ import annotations

import secrets

MSG_ID_PREFIX = 'zpsm'
SUB_KEY_PREFIX = 'zpsk'


def new_msg_id() -> str:
    """`zpsm` and 32 hex characters."""
    return MSG_ID_PREFIX + secrets.token_hex(16)


def new_sub_key(endpoint_type: str) -> str:
    """`zpsk.<endpoint type>.` and 32 hex characters, as 3.1's keys began."""
    return f'{SUB_KEY_PREFIX}.{endpoint_type}.{secrets.token_hex(16)}'
