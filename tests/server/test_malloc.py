"""A password verified in a worker leaves no 19 MiB behind (zato/server/malloc.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import zato

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(zato.__file__)))

# A hash, then verifications, as a worker does at its first Basic Auth request; RSS in MiB before and after
SCRIPT = '''
import sys
from zato.server.malloc import keep_mmap_threshold
from zato.security.passwords import hash_password, verify_password
def rss():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith('VmRSS'))
if sys.argv[1] == 'kept':
    assert keep_mmap_threshold()
password_hash = hash_password('secret')
before = rss()
for _ in range(3):
    assert verify_password(password_hash, 'secret')
print(rss() - before)
'''


def growth(mode: str) -> int:
    done = subprocess.run([sys.executable, '-c', SCRIPT, mode], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, 'PYTHONPATH': ROOT}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_argon2_verifications_give_their_memory_back_with_the_threshold_kept() -> None:
    assert growth('kept') < 5


def test_without_it_glibc_keeps_the_19_mib_of_an_argon2_verification() -> None:
    # What the fix is for: if this stops holding (another C library, another glibc), the fix is moot
    assert growth('default') >= 15
