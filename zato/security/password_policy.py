"""What a password must be (NIST SP 800-63B style): long enough, not absurdly long, not one of
the most common ones; no composition rules."""

from __future__ import annotations

MIN_LENGTH = 8
MAX_LENGTH = 1024

# The most used passwords in public breach corpora; a password on this list is refused.
COMMON = frozenset((
    '123456', '123456789', '12345678', 'password', 'qwerty123', 'qwerty', '1q2w3e', '12345',
    '1234567', '111111', '1234567890', '123123', 'abc123', 'password1', '1234', 'iloveyou',
    '000000', 'qwertyuiop', '123321', '654321', '666666', '987654321', '121212', 'dragon', 'monkey',
    'letmein', 'football', 'baseball', 'welcome', 'login', 'admin', 'princess', 'solo', 'master',
    'sunshine', 'shadow', 'passw0rd', 'trustno1', 'superman', '1qaz2wsx', '7777777', 'zaq12wsx',
    'starwars', 'hello123', 'freedom', 'whatever', 'qazwsx', 'ninja', 'michael', 'mustang',
    'charlie', 'donald', 'aa123456', 'access', '696969', 'batman', '123qwe', 'loveme', 'asdfghjkl',
    'asdfgh', '11111111', '88888888', '00000000', 'changeme', 'changeit', 'default', 'secret',
    'zato', 'administrator', 'p@ssw0rd', 'password123', 'admin123', 'root', 'toor', 'test1234',
    'guest',
))


def check_password(password: str) -> str | None:
    """None if the password is acceptable, else the reason in a short sentence."""
    if len(password) < MIN_LENGTH:
        return f'must be at least {MIN_LENGTH} characters long'
    if len(password) > MAX_LENGTH:
        return f'must be at most {MAX_LENGTH} characters long'
    if password.lower() in COMMON:
        return 'is one of the most common passwords'
    return None
