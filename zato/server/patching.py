"""An ``os.close`` for gevent workers that keeps fork-then-exec working, so that services can run
commands with the ``sh`` library that Zato 3.1 shipped, or any code that forks and execs the same way
(gevent's own ``subprocess`` was not affected); docs/subprocess.md.

Since 25.8.1, gevent's patched ``os.close`` defers closing anything but a regular file to the next
turn of the event loop, in case a watcher still waits on it. That breaks the fork-then-exec idiom
that ``sh`` (and any code like it) uses:

- the parent closes its copy of a pipe's write end, then reads the read end with a blocking
  ``os.read`` until the child's exec closes the child's copy: the parent's copy is never closed,
  because the loop does not run again, so the worker hangs in the read, serves nothing more, and its
  child is never reaped;
- the child, between fork and exec, closes every descriptor it inherited, which runs the event loop
  it copied from the worker: libev aborts on its own closed epoll descriptor (or the child goes on
  serving the worker's connections).

``close`` closes at once unless an I/O watcher is active on the descriptor, the rule gevent's own
sockets follow when they close (only then is the close deferred, by gevent's function), and always
at once in a process forked from the one that installed it (a child on its way to exec).
``ZatoWorker.patch`` installs it right after gunicorn's gevent worker has monkey-patched the worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# Set by install_close()
_owner_pid = 0
_os_close: Callable[[int], None] = os.close
_deferred_close: Callable[[int], None] = os.close


def _no_hub() -> Any:
    return None


_get_hub: Callable[[], Any] = _no_hub


def install_close() -> None:
    """Makes ``close`` this process's ``os.close``; call after gevent's monkey-patching (which
    installs its own), in the process that runs the event loop."""
    global _owner_pid, _os_close, _deferred_close, _get_hub
    import gevent.os
    from gevent import monkey
    from gevent._hub_local import get_hub_if_exists  # this thread's hub, without creating one

    _os_close = monkey.get_original('os', 'close')
    # gevent's deferring close (gevent.os.close exists since 25.8.1; before that os.close was not patched)
    _deferred_close = getattr(gevent.os, 'close', _os_close)
    _get_hub = get_hub_if_exists
    _owner_pid = os.getpid()
    os.close = close


def close(fd: int) -> None:
    """``os.close``: at once, unless an I/O watcher of this process's event loop waits on ``fd``."""
    if os.getpid() != _owner_pid:
        # A forked child (on its way to exec): its copy of the parent's event loop must never run
        return _os_close(fd)
    hub = _get_hub()
    # closing_fd() queues events for the watchers active on fd and says whether there were any
    if hub is None or not hub.loop.closing_fd(fd):
        return _os_close(fd)
    return _deferred_close(fd)
