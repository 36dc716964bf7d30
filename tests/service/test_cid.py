from __future__ import annotations

import os
import re

from zato.service.invoker import new_cid


def test_a_cid_is_24_hex_characters_and_never_repeats():
    cids = [new_cid() for _ in range(5000)]
    assert all(re.fullmatch(r'[0-9a-f]{24}', cid) for cid in cids)
    assert len(set(cids)) == len(cids)


def test_a_forked_child_does_not_reuse_the_parents_batch_of_cids():
    new_cid()  # the parent now holds a batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, ','.join(new_cid() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1 << 16).decode().split(',')
    os.waitpid(pid, 0)
    parent = [new_cid() for _ in range(100)]
    assert not set(child) & set(parent)
