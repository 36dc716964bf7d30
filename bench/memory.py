"""What a Zato worker costs in memory: PSS, RSS and private memory of each worker of a two-worker
server, right after start and after load.

    .venv/bin/python bench/memory.py                 # ~1 minute
    .venv/bin/python bench/memory.py --json /tmp/memory.json --workers 2 --duration 10

A quickstart environment (``zato quickstart create --workers N``) is started; once every worker
answers, each process's /proc/PID/status (VmRSS) and /proc/PID/smaps_rollup (Pss, private and
shared pages) are read. wrk then sends GET /zato/ping over 50 keep-alive connections for
``--duration`` seconds (the workers take connections in turn), and the same figures are read again.

Pss charges each page shared by n processes 1/n to each of them, so the workers' Pss plus the
master's is what the server costs in all, and a worker's Pss is what one more worker adds
(roughly: one more sharer lowers everybody's share of the common pages). What the gunicorn master
imports before it forks is shared with every worker copy-on-write (zato/server/preload.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
import wrk  # noqa: E402

KEYS = ('Pss', 'VmRSS', 'Private_Clean', 'Private_Dirty', 'Shared_Clean', 'Shared_Dirty')


def snapshot(server: servers.Zato) -> dict[str, Any]:
    assert server.master_pid is not None
    return {'master': servers.memory_kib(server.master_pid),
            'workers': [servers.memory_kib(pid) for pid in server.worker_pids()]}


def mib(kib: int) -> str:
    return f'{kib / 1024:.1f}'


def show(data: dict[str, Any]) -> str:
    lines = ['| when | process | PSS MiB | RSS MiB | private MiB | shared MiB |', '|---|---|--:|--:|--:|--:|']
    for when in ('started', 'after_load'):
        snap = data[when]
        rows = [('master', snap['master'])] + [(f'worker {n}', w) for n, w in enumerate(snap['workers'], 1)]
        for name, m in rows:
            private = m.get('Private_Clean', 0) + m.get('Private_Dirty', 0)
            shared = m.get('Shared_Clean', 0) + m.get('Shared_Dirty', 0)
            lines.append(f'| {when.replace("_", " ")} | {name} | {mib(m.get("Pss", 0))} | {mib(m.get("VmRSS", 0))} | '
                         f'{mib(private)} | {mib(shared)} |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--duration', type=float, default=10.0, help='seconds of load (default 10)')
    p.add_argument('--settle', type=float, default=3.0, help='seconds to wait after start and after load')
    p.add_argument('--port', type=int, default=17480)
    p.add_argument('--server-cpu', type=int, default=0)
    p.add_argument('--client-cpu', type=int, default=1)
    p.add_argument('--json', metavar='FILE')
    p.add_argument('--keep', action='store_true', help='keep the environment')
    args = p.parse_args(argv)

    work_dir = tempfile.mkdtemp(prefix='zato-bench-memory-')
    server = servers.Zato(args.port, args.server_cpu, work_dir, os.path.join(work_dir, 'env'), pure_python=False,
                          workers=args.workers)
    data: dict[str, Any] = {'when': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'workers': args.workers,
                            'load_1m_before': round(os.getloadavg()[0], 2)}
    try:
        server.start()
        deadline = time.monotonic() + 60
        while True:  # every worker up, and the server answering
            try:
                server.worker_pids()
                if servers.http_call(server.base_url + '/zato/ping')[0] == 200:
                    break
            except (servers.ServerError, OSError):
                pass
            if time.monotonic() > deadline:
                raise servers.ServerError('the workers did not come up within 60 s')
            time.sleep(0.2)
        time.sleep(args.settle)
        data['started'] = snapshot(server)
        result = wrk.run(server.base_url + "/zato/ping", duration=args.duration, connections=50, threads=1,
                         cpu=args.client_cpu, method='GET')
        data['load'] = {'requests': result.requests, 'rps': result.rps}
        time.sleep(args.settle)
        data['after_load'] = snapshot(server)
    finally:
        server.stop()
        if args.keep:
            print(f'environment kept: {work_dir}', file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(show(data))
    pss = [w['Pss'] for w in data['after_load']['workers']]
    print(f'\nworker PSS after load: {", ".join(mib(x) for x in pss)} MiB; {data["load"]["rps"]:,.0f} req/s of '
          f'GET /zato/ping during the load; 1-minute load average before: {data["load_1m_before"]}')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
