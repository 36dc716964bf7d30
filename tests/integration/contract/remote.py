"""A remote end for the contract suite, run as its own process so that it can be killed and started
again on the same port: `python remote.py http PORT` (HEAD/GET answer 200, a JSON-RPC POST gets its
params back as the result) or `python remote.py wsx PORT` (a WebSocket echo server)."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802 - the name http.server looks for
        self.answer(200, {})

    def do_GET(self) -> None:  # noqa: N802
        self.answer(200, {'path': self.path})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get('Content-Length') or 0)
        request = json.loads(self.rfile.read(length) or b'{}')
        self.answer(200, {'jsonrpc': '2.0', 'id': request.get('id'), 'result': request.get('params')})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def main(kind: str, port: int) -> None:
    if kind == 'http':
        ThreadingHTTPServer(('127.0.0.1', port), Handler).serve_forever()
    else:
        from websockets.sync.server import ServerConnection, serve

        def echo(ws: ServerConnection) -> None:
            for message in ws:
                ws.send(message)
        with serve(echo, '127.0.0.1', port) as server:
            server.serve_forever()


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]))
