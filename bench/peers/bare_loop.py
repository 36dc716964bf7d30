"""The ceiling of Zato's design: a bare, hand-parsed gevent loop serving GET /hello.

    gunicorn -k bare_loop.BareWorker -w 1 --chdir bench/peers bare_loop:app

A gunicorn ``GeventWorker`` subclass, like Zato's worker, whose gevent ``StreamServer`` hands every
accepted connection to ``serve``: keep-alive, TCP_NODELAY, just enough HTTP/1.1 parsing for this
one request (the request line, the end of the head, a Content-Length to skip a body), the body
dumped by orjson for every request, and one write per batch of pipelined requests (``send``, then
``sendall`` for anything the kernel did not take, as Zato does: gevent's ``sendall`` alone asks the
kernel for SO_SNDBUF on every call). No
routing, no services, no limits, no timeouts: what is left when everything Zato adds on top of
gevent, gunicorn and the socket is taken away, so that bench/rest.py can say what fraction of it
Zato's hello world reaches.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import gevent
import orjson
from gunicorn.workers.ggevent import GeventWorker

HELLO = {'message': 'Hello, World!'}
HEAD_END = b'\r\n\r\n'
# BARE_LOOP_YIELD=1: gevent.sleep(0) after each batch, as Zato's connection handler does for fairness
YIELD = os.environ.get('BARE_LOOP_YIELD') == '1'
_dumps = orjson.dumps
_sleep = gevent.sleep


def _response(status: bytes, body: bytes, keep_alive: bool) -> bytes:
    connection = b'' if keep_alive else b'Connection: close\r\n'
    return (b'HTTP/1.1 ' + status + b'\r\nContent-Type: application/json\r\nContent-Length: '
            + str(len(body)).encode() + b'\r\n' + connection + b'\r\n' + body)


def _content_length(head: bytes) -> int:
    """The request's Content-Length, 0 without one (this peer is only ever sent GETs)."""
    lower = head.lower()
    at = lower.find(b'\r\ncontent-length:')
    if at < 0:
        return 0
    end = lower.find(b'\r\n', at + 2)
    return int(lower[at + 17:end].strip())


def serve(client: socket.socket) -> None:
    """Answers requests on one connection until the client closes it or asks to."""
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv, send, sendall = client.recv, client.send, client.sendall
    buffer = b''
    while True:
        data = recv(65536)
        if not data:
            return
        buffer += data
        out = []
        close = False
        while True:
            end = buffer.find(HEAD_END)
            if end < 0:
                break
            head = buffer[:end]
            size = end + 4 + _content_length(head)
            if len(buffer) < size:
                break
            buffer = buffer[size:]
            line_end = head.find(b'\r\n')
            method, path, version = (head if line_end < 0 else head[:line_end]).split(b' ', 2)
            keep_alive = version == b'HTTP/1.1' and b'\r\nconnection: close' not in head.lower()
            if method == b'GET' and path == b'/hello':
                out.append(_response(b'200 OK', _dumps(HELLO), keep_alive))
            else:
                out.append(_response(b'404 Not Found', b'{}', keep_alive))
            if not keep_alive:
                close = True
                break
        if out:
            # One send() nearly always takes it all; gevent's sendall would first ask the kernel for
            # SO_SNDBUF (a getsockopt call per response), so it is only for what is left
            data = out[0] if len(out) == 1 else b''.join(out)
            sent = send(data)
            if sent < len(data):
                sendall(data[sent:])
        if close:
            return
        if YIELD:
            _sleep(0)


class BareWorker(GeventWorker):
    """gunicorn's gevent worker with ``serve`` instead of WSGI."""

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        try:
            serve(client)
        except OSError:
            pass
        finally:
            client.close()


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:  # pragma: no cover - never called
    """gunicorn wants an application; BareWorker.handle answers every connection without it."""
    start_response('500 Internal Server Error', [])
    return [b'']
