"""SMTP and IMAP connections against a server that accepts connections and never says a word, in a
process monkey-patched by gevent as a worker is: the wait is a ConnectorTimeout naming the
connection, and it blocks nothing else — smtplib and imaplib use gevent's sockets there."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.harness import child_env

SCRIPT = '''
from gevent import monkey
monkey.patch_all()

import json, sys, time
import gevent, gevent.server
from zato.connectors.base import validate
from zato.connectors.imap import IMAPConnector
from zato.connectors.smtp import SMTPConnector

held = []
def silent(sock, address):
    held.append(sock)   # accepted, never answered
    gevent.sleep(30)

server = gevent.server.StreamServer(('127.0.0.1', 0), silent)
server.start()

cls = {'smtp': SMTPConnector, 'imap': IMAPConnector}[sys.argv[1]]
config, _ = validate(cls.fields, {'host': '127.0.0.1', 'port': server.server_port, 'mode': 'plain', 'username': 'u',
                                  'timeout': 1.0})
conn = cls('silent', config, 'secret')
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
started = time.monotonic()
conn.start()
conn.wait_attempted(5)
took = time.monotonic() - started
ticker.kill()
print(json.dumps({'took': took, 'ticks': len(ticks), 'last_error': conn.last_error}))
conn.stop()
'''


@pytest.mark.parametrize('kind', ['smtp', 'imap'])
def test_a_server_that_never_answers_is_a_timeout_that_blocks_no_other_greenlet(kind):
    proc = subprocess.run([sys.executable, '-c', SCRIPT, kind], capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['last_error'].startswith('ConnectorTimeout: no answer from 127.0.0.1:'), out
    assert out['last_error'].endswith('within 1.0s'), out
    assert 0.9 < out['took'] < 3, out
    # While the connector waited, the other greenlet ran about every 10 ms
    assert out['ticks'] > 40, out
