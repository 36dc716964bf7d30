"""zato.server.patching: in a gevent-patched process with our os.close, fork-then-exec works as it
does without gevent, and a descriptor that a greenlet waits on is still closed the careful way.

Each case runs in a child Python process that monkey-patches itself as a worker does (this test
process is not patched), and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRELUDE = '''
import json, os, sys, time
from gevent import monkey
monkey.patch_all()
import gevent
from zato.server.patching import install_close
install_close()

def report(**values):
    print(json.dumps(values), flush=True)
'''


def run(code: str, timeout: float = 20) -> dict:
    proc = subprocess.run([sys.executable, '-c', PRELUDE + code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'PYTHONPATH': ROOT}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_pipes_write_end_is_closed_at_once_so_a_blocking_read_sees_the_end():
    # The parent side of fork-then-exec: close our copy of the write end, read until the other copy closes
    out = run('''
gevent.sleep(0)  # the hub runs, as in a worker (gevent closes at once in a process without one)
r, w = os.pipe()
os.close(w)
report(read=os.read(r, 10).decode())
''', timeout=10)
    assert out == {'read': ''}


def test_a_forked_child_closes_what_it_inherited_before_exec_without_running_the_parents_event_loop():
    # The child side, as sh does it: close every inherited descriptor (the event loop's too), one of
    # them twice, then exec. The parent's read of the pipe ends as soon as the exec'd program holds
    # no copy of its write end, not when that program exits
    out = run('''
from gevent import monkey
gevent.sleep(0.01)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    inherited = [int(fd) for fd in os.listdir('/proc/self/fd') if int(fd) > 2]
    for fd in inherited + [w]:
        try:
            os.close(fd)
        except OSError:
            pass
    os.execv('/bin/sleep', ['sleep', '2'])
monkey.get_original('os', 'close')(w)  # the parent's copy, closed at once in any case
started = time.monotonic()
data = os.read(r, 10)
eof_after = time.monotonic() - started
_, status = os.waitpid(pid, 0)
report(read=data.decode(), eof_before_the_program_ended=eof_after < 1.5,
       exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
       signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)
''')
    assert out == {'read': '', 'eof_before_the_program_ended': True, 'exit_code': 0, 'signal': None}


def test_a_descriptor_a_greenlet_waits_on_is_closed_only_after_the_waiter_is_woken():
    out = run('''
import select
r, w = os.pipe()
def wait():
    try:
        return select.select([r], [], [], 5)[0]
    except (OSError, ValueError) as e:
        return type(e).__name__
waiter = gevent.spawn(wait)
gevent.sleep(0.05)
started = time.monotonic()
os.close(r)
open_right_after = True
try:
    os.fstat(r)
except OSError:
    open_right_after = False
waiter.join(5)
gevent.sleep(0.05)
try:
    os.fstat(r)
    closed_later = False
except OSError:
    closed_later = True
report(open_right_after=open_right_after, closed_later=closed_later, waiter_done=waiter.dead,
       waited=round(time.monotonic() - started, 2))
''')
    assert out['open_right_after'] and out['closed_later'] and out['waiter_done'] and out['waited'] < 1, out


def test_sh_runs_commands_while_other_greenlets_run_and_leaves_no_child_behind():
    out = run('''
import sh
ticks = []
def tick():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.05)
gevent.spawn(tick)
started = time.monotonic()
done = sh.sleep(0.5)
echoed = sh.echo('hello')
failed = None
try:
    sh.false()
except sh.ErrorReturnCode as e:
    failed = e.exit_code
ticks_during = len([t for t in ticks if t >= started])
gevent.sleep(0.1)
children = []
for entry in os.listdir('/proc'):
    if entry.isdigit():
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            children.append(fields[0])
report(exit_code=done.exit_code, stdout=echoed.stdout.decode(), failed=failed, ticks_during=ticks_during,
       children=children)
''')
    assert out['exit_code'] == 0 and out['stdout'] == 'hello\n' and out['failed'] == 1, out
    assert out['ticks_during'] >= 6, out  # the 0.05 s ticker kept going through the 0.5 s command
    assert out['children'] == [], out  # each child reaped, none left (a zombie would be listed)
