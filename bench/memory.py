"""What a Zato worker costs in memory: PSS, RSS and private memory of each worker of a two-worker
server, right after start and after load.

    .venv/bin/python bench/memory.py                 # ~1 minute
    .venv/bin/python bench/memory.py --json /tmp/memory.json --workers 2 --duration 10
    .venv/bin/python bench/memory.py --pages         # and what the workers did to their private pages

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
import struct
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
import wrk  # noqa: E402

KEYS = ('Pss', 'VmRSS', 'Private_Clean', 'Private_Dirty', 'Shared_Clean', 'Shared_Dirty')


def mapping_kind(name: str) -> str:
    """What a line of /proc/PID/smaps maps: the C heap, anonymous memory (pymalloc's arenas, large
    blocks glibc serves with mmap, gevent's stacks), a file (code and read-only data of Python's and
    the extensions' shared objects, and anything else mapped from disk), or the stack."""
    if name == '[heap]':
        return 'heap'
    if name == '[stack]':
        return 'stack'
    if not name or name.startswith('[anon') or name.startswith('['):
        return 'anon'
    return 'file'


def private_by_kind(pid: int) -> dict[str, int]:
    """A process's private pages (clean + dirty, KiB) by kind of mapping (`mapping_kind`): in a worker,
    what it wrote to (or made anew) since the fork."""
    out = {'heap': 0, 'anon': 0, 'file': 0, 'stack': 0}
    kind = 'anon'
    try:
        with open(f'/proc/{pid}/smaps', encoding='utf-8', errors='replace') as f:
            for line in f:
                first, _, rest = line.partition(' ')
                if not first.endswith(':'):  # a mapping's header: range perms offset dev inode [name]
                    fields = rest.split(None, 4)
                    kind = mapping_kind(fields[4].strip() if len(fields) > 4 else '')
                elif first in ('Private_Clean:', 'Private_Dirty:'):
                    out[kind] += int(rest.split()[0])
    except OSError:
        pass
    return out


def _pagemap(pid: int, lo: int, pages: int) -> tuple[int, ...]:
    with open(f'/proc/{pid}/pagemap', 'rb') as f:
        f.seek(lo // 4096 * 8)
        data = f.read(pages * 8)
    return struct.unpack(f'<{len(data) // 8}Q', data)


def written_pages(master: int, worker: int) -> dict[str, int]:
    """A worker's private pages of the heap and of anonymous memory, by what the worker did to them,
    told apart by comparing each with the master's page at the same address (KiB; needs root, or the
    right to ptrace both, for /proc/PID/mem and the pagemap's flags):

    - ``new``: the master has no page there (memory the worker mapped, or the master gave back);
    - ``restored``: the same bytes as the master's: written and put back (a reference count taken and
      given back), yet a copy of its own;
    - ``sparse``: up to 16 of its 512 words differ (reference counts, counters, a few pointers);
    - ``dense``: more differ (objects made in the worker, in memory the master had free).
    (A page the master wrote after the fork counts here too: the worker then keeps the original.)"""
    out = {'new': 0, 'restored': 0, 'sparse': 0, 'dense': 0}
    with open(f'/proc/{worker}/maps', encoding='utf-8') as f:
        mappings = [line.split(None, 5) for line in f]
    with open(f'/proc/{worker}/mem', 'rb') as mem_w, open(f'/proc/{master}/mem', 'rb') as mem_m:
        for fields in mappings:
            name = fields[5].strip() if len(fields) > 5 else ''
            if mapping_kind(name) not in ('heap', 'anon') or 'w' not in fields[1]:
                continue
            lo, hi = (int(x, 16) for x in fields[0].split('-'))
            count = (hi - lo) // 4096
            ours, theirs = _pagemap(worker, lo, count), _pagemap(master, lo, count)
            for i, entry in enumerate(ours):
                if not entry >> 63 & 1 or not entry >> 56 & 1:  # not present, or not exclusively mapped
                    continue
                if i >= len(theirs) or not theirs[i] >> 63 & 1:
                    out['new'] += 4
                    continue
                addr = lo + i * 4096
                mem_w.seek(addr)
                mem_m.seek(addr)
                a, b = struct.unpack('<512Q', mem_w.read(4096)), struct.unpack('<512Q', mem_m.read(4096))
                differ = sum(1 for x, y in zip(a, b, strict=True) if x != y)
                out['restored' if differ == 0 else 'sparse' if differ <= 16 else 'dense'] += 4
    return out


def snapshot(server: servers.Zato, pages: bool = False) -> dict[str, Any]:
    assert server.master_pid is not None
    workers = []
    for pid in server.worker_pids():
        m = servers.memory_kib(pid)
        m.update({f'private_{kind}': kib for kind, kib in private_by_kind(pid).items()})
        if pages:
            m.update({f'written_{kind}': kib for kind, kib in written_pages(server.master_pid, pid).items()})
        workers.append(m)
    return {'master': servers.memory_kib(server.master_pid), 'workers': workers}


def mib(kib: int) -> str:
    return f'{kib / 1024:.1f}'


def show(data: dict[str, Any]) -> str:
    lines = ['| when | process | PSS MiB | RSS MiB | private MiB | shared MiB | private: heap / anon / file / stack |',
             '|---|---|--:|--:|--:|--:|--:|']
    for when in ('started', 'after_load'):
        snap = data[when]
        rows = [('master', snap['master'])] + [(f'worker {n}', w) for n, w in enumerate(snap['workers'], 1)]
        for name, m in rows:
            private = m.get('Private_Clean', 0) + m.get('Private_Dirty', 0)
            shared = m.get('Shared_Clean', 0) + m.get('Shared_Dirty', 0)
            kinds = ' / '.join(mib(m[f'private_{k}']) for k in ('heap', 'anon', 'file', 'stack')) \
                if 'private_heap' in m else ''
            lines.append(f'| {when.replace("_", " ")} | {name} | {mib(m.get("Pss", 0))} | {mib(m.get("VmRSS", 0))} | '
                         f'{mib(private)} | {mib(shared)} | {kinds} |')
    if any('written_new' in w for w in data['after_load']['workers']):
        lines += ['', '| after load | private heap + anon MiB: new / restored / sparse / dense (`written_pages`) |',
                  '|---|--:|']
        for n, w in enumerate(data['after_load']['workers'], 1):
            kinds = ' / '.join(mib(w[f'written_{k}']) for k in ('new', 'restored', 'sparse', 'dense'))
            lines.append(f'| worker {n} | {kinds} |')
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
    p.add_argument('--pages', action='store_true',
                   help="also compare each worker's private pages with the master's (written_pages; needs root)")
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
        data['started'] = snapshot(server, args.pages)
        result = wrk.run(server.base_url + "/zato/ping", duration=args.duration, connections=50, threads=1,
                         cpu=args.client_cpu, method='GET')
        data['load'] = {'requests': result.requests, 'rps': result.rps}
        time.sleep(args.settle)
        data['after_load'] = snapshot(server, args.pages)
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
