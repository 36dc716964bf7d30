"""Runs wrk once and returns what it measured.

Every run goes through a small generated Lua script: its ``done`` hook prints one JSON line with
the exact counters and latency percentiles (in microseconds), so nothing depends on parsing
wrk's human-readable units. The same script sets the method, the body for POST runs and any extra
request headers (an Authorization header, say). ``--latency``
is passed as well, so the raw output kept in ``WrkResult.output`` has the usual distribution.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

MARKER = 'WRK_JSON '

_LUA = '''
wrk.method = %(method)s
%(body)s
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
'''


def lua_string(value: str) -> str:
    # A Lua long-bracket string takes the text verbatim; pick a level the text does not contain
    level = 0
    while f']{"=" * level}]' in value:
        level += 1
    eq = '=' * level
    return f'[{eq}[{value}]{eq}]'


def lua_script(method: str, body: bytes | None = None, content_type: str = 'application/json',
               headers: dict[str, str] | None = None) -> str:
    body_lines = ''
    if body is not None:
        body_lines = (f'wrk.body = {lua_string(body.decode("utf-8"))}\n'
                      f'wrk.headers["Content-Type"] = {lua_string(content_type)}')
    # The spaces matter: `[[[` would open a long string
    header_lines = '\n'.join(f'wrk.headers[ {lua_string(k)} ] = {lua_string(v)}' for k, v in (headers or {}).items())
    return _LUA % {'method': lua_string(method), 'body': body_lines, 'headers': header_lines, 'marker': MARKER}


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors_connect: int
    errors_read: int
    errors_write: int
    errors_status: int   # responses other than 2xx/3xx
    errors_timeout: int
    cpu_s: float         # CPU time wrk itself used
    output: str = field(repr=False, default='')

    @property
    def errors(self) -> int:
        return self.errors_connect + self.errors_read + self.errors_write + self.errors_status

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {'requests': self.requests, 'duration_s': round(self.duration_s, 3), 'rps': round(self.rps, 1),
                'p50_ms': self.p50_ms, 'p90_ms': self.p90_ms, 'p99_ms': self.p99_ms, 'max_ms': self.max_ms,
                'errors': {'connect': self.errors_connect, 'read': self.errors_read, 'write': self.errors_write,
                           'status': self.errors_status, 'timeout': self.errors_timeout},
                'wrk_cpu_percent': round(self.cpu_percent, 1)}


class WrkError(RuntimeError):
    pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(url: str, *, duration: float, connections: int, threads: int = 1, cpu: int | None = None,
        method: str = 'GET', body: bytes | None = None, headers: dict[str, str] | None = None,
        timeout_s: float = 2.0, procs: list[subprocess.Popen] | None = None) -> WrkResult:
    """Runs ``wrk`` against ``url``, pinned to ``cpu`` if given; keep-alive as wrk always is.

    ``procs`` receives the running wrk process so that the caller can kill it on Ctrl-C.
    """
    with tempfile.NamedTemporaryFile('w', suffix='.lua', prefix='zato-bench-', delete=False) as f:
        f.write(lua_script(method, body, headers=headers))
        script = f.name
    # wrk takes whole seconds only
    cmd = ['wrk', f'-t{threads}', f'-c{connections}', f'-d{max(1, round(duration))}s',
           f'--timeout={max(1, round(timeout_s))}s', '--latency', '-s', script, url]
    if cpu is not None:
        cmd = ['taskset', '-c', str(cpu), *cmd]
    cpu_before = _children_cpu()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        if procs is not None:
            procs.append(proc)
        try:
            output, _ = proc.communicate(timeout=duration + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if procs is not None:
                procs.remove(proc)
    finally:
        os.unlink(script)
    cpu_s = _children_cpu() - cpu_before

    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise WrkError(f'wrk failed (exit code {proc.returncode}): {output.strip()[-500:]}')
    data = json.loads(line[len(MARKER):])
    seconds = data['duration_us'] / 1e6
    return WrkResult(
        requests=data['requests'], duration_s=seconds, rps=data['requests'] / seconds if seconds else 0.0,
        p50_ms=data['p50_us'] / 1000, p90_ms=data['p90_us'] / 1000, p99_ms=data['p99_us'] / 1000,
        max_ms=data['max_us'] / 1000, errors_connect=data['connect'], errors_read=data['read'],
        errors_write=data['write'], errors_status=data['status'], errors_timeout=data['timeout'], cpu_s=cpu_s,
        output=output)
