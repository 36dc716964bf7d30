"""Pub/sub with guaranteed delivery: Zato's REST API on PostgreSQL against RabbitMQ, in the same run.

    .venv/bin/pip install -r bench/requirements.txt              # pika, for RabbitMQ
    .venv/bin/python bench/pubsub.py --json bench/results/pubsub.json   # ~5 minutes
    .venv/bin/python bench/pubsub.py --quick                     # ~1 minute, a smoke run

What is measured, the same way on both sides:

* **publish**: each message is durable and its publisher is told so before it sends the next one.
  Zato: ``POST /zato/pubsub/topic/bench/orders`` with a REST endpoint's Basic Auth; the ``msg_id``
  comes back after the message and one queue entry per subscription are committed to PostgreSQL.
  The load generator is wrk (C, a generated Lua script that sets the method, the body and the
  Authorization header, bench/wrk.py), `c` keep-alive connections, so `c` publications in flight.
  RabbitMQ: persistent messages (delivery_mode 2) to a durable fanout exchange bound to 1 or 2
  durable queues (the subscriptions), with publisher confirms; one pika SelectConnection keeps `c`
  unconfirmed messages in flight (a confirm frees a slot), which is what `c` clients that each wait
  for their msg_id are.
* **drain**: a queue pre-filled with N messages is read to the end by `k` consumers, acknowledging
  what they read. Zato: each consumer thread (http.client, keep-alive) loops ``POST
  /zato/pubsub/msg/pull {max_messages: B}`` then ``POST /zato/pubsub/msg/ack {msg_ids}``. RabbitMQ:
  `k` channels of one pika SelectConnection, ``basic_qos(prefetch_count=B)``, manual acks: every
  message at B = 1, one ``multiple=True`` ack per B messages otherwise.
* **latency**: publish -> pull -> ack end to end: a publisher sends R messages per second (each
  waits for its msg_id / confirm), one subscriber reads and acknowledges them; a message's latency is
  from the moment its publication is sent to the moment its acknowledgement is answered (Zato) or
  sent (RabbitMQ, whose ack has no answer). Zato's subscriber pulls (batch 100) in a loop without
  pausing, as a pull API allows; RabbitMQ pushes to its consumer. **Push latency** (Zato only, the
  counterpart of RabbitMQ's push): a notify subscription pushes through an outgoing REST connection to
  a receiver in the bench's process; from the sending of a publication to its receipt.

Publishing is measured on a second Zato, on SQLite, too (``--no-sqlite`` leaves it out). Nothing is
pinned: PostgreSQL and RabbitMQ are the machine's shared services. Next to each rate the CPU time per
message of each party is reported (the Zato workers, the PostgreSQL backends of the bench's own
database, RabbitMQ's beam.smp, the client), read from /proc, and the machine's load before and after.
``--profile FILE`` adds one publish run, not in the tables, with py-spy on a worker and
pg_stat_activity sampled every 5 ms. bench/README.md ("Pub/sub vs RabbitMQ") has the figures.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
import wrk  # noqa: E402

TOPIC = '/bench/orders'
USER, PASSWORD = 'bench-ps', 'bench-pubsub-only-on-127.0.0.1-4f2a9c'
EXCHANGE = 'zato-bench-pubsub'
AUTH = 'Basic ' + base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()


def log(message: str) -> None:
    print(message, flush=True)


# ################################################################################################ CPU

def cpu_of(names: tuple[str, ...]) -> float:
    """User + system CPU seconds of every process whose command name is one of `names`."""
    return sum(servers.cpu_of_fields(fields) for _, comm, fields in servers.processes() if comm in names)


def paced(rate: float, duration: float) -> Iterator[float]:
    """The send times of `rate` messages a second for `duration` seconds: sleeps until each is due (one
    already due, because the sender fell behind, goes at once) and yields time.monotonic() then."""
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < duration:
        pause = started + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        yield time.monotonic()
        n += 1


def busy_cpu() -> float:
    """Seconds of all CPUs not idle (/proc/stat), for the share of others' work."""
    with open('/proc/stat', encoding='ascii') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf('SC_CLK_TCK')


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU seconds of the parties over one measurement. PostgreSQL's are those of the backends of the
    bench's own database (others' tests use the same server), found in pg_stat_activity; RabbitMQ's are
    all of its node's (beam.smp)."""

    def __init__(self, worker_pids: list[int], pg_backends: Any = None) -> None:
        self.worker_pids = worker_pids
        self.pg_backends: Any = pg_backends or (lambda: [])

    def sample(self) -> dict[str, float]:
        workers = postgres = 0.0
        for pid in self.worker_pids:
            try:
                workers += servers.cpu_seconds(pid)
            except OSError:
                pass
        for pid in self.pg_backends():
            try:
                postgres += servers.cpu_seconds(pid)
            except OSError:
                pass
        return {'zato_workers': workers, 'postgres': postgres, 'rabbitmq': cpu_of(('beam.smp',)),
                'client': self_cpu(), 'busy': busy_cpu(), 'wall': time.monotonic()}

    @staticmethod
    def per_message(before: dict[str, float], after: dict[str, float], count: int, wrk_cpu: float = 0.0,
                    ) -> dict[str, float]:
        wall = after['wall'] - before['wall']
        out: dict[str, float] = {}
        for key in ('zato_workers', 'postgres', 'rabbitmq', 'client'):
            used = after[key] - before[key] + (wrk_cpu if key == 'client' else 0.0)
            out[f'{key}_cpu_us_per_msg'] = round(1e6 * used / count, 1) if count else 0.0
            out[f'{key}_cpu_percent'] = round(100 * used / wall, 1) if wall else 0.0
        out['machine_busy_percent'] = round(100 * (after['busy'] - before['busy']) / wall / (os.cpu_count() or 1), 1)
        return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def payload(size: int) -> str:
    return ('order-' * (size // 6 + 1))[:size]


# ################################################################################################ Zato

class ZatoClient:
    """A keep-alive HTTP connection to the server with the endpoint's credentials (one per thread)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)

    def call(self, path: str, body: Any) -> Any:
        self.conn.request('POST', path, json.dumps(body).encode(),
                          {'Authorization': AUTH, 'Content-Type': 'application/json'})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise servers.ServerError(f'{path}: HTTP {resp.status}: {data[:300]!r}')
        return json.loads(data)

    def publish(self, body: dict[str, Any]) -> Any:
        return self.call('/zato/pubsub/topic' + TOPIC, body)

    def close(self) -> None:
        self.conn.close()


class ZatoSide:
    """A quickstart environment on a scratch PostgreSQL database (or SQLite, its default ODB): one
    topic, one REST endpoint allowed to publish and subscribe, and as many subscriptions (each of an
    endpoint of its own) as a measurement needs."""

    def __init__(self, args: argparse.Namespace, work_dir: str, odb: str = 'postgresql', port: int = 0) -> None:
        self.args = args
        self.odb = odb
        self.name = 'zato' if odb == 'postgresql' else f'zato-{odb}'
        self.db = ''
        self.server = servers.Zato(port or args.port, None, work_dir, os.path.join(work_dir, self.name),
                                   pure_python=False, workers=args.workers)
        self.sub_keys: list[str] = []
        self._extra_users: set[str] = set()
        self._pg: Any = None

    def start(self) -> None:
        pg = self.args
        # The servers inherit these: the ODB's password, and no web-admin, which nothing here needs
        os.environ.update(ZATO_ODB_PASSWORD=pg.pg_password, ZATO_WEB_ADMIN_ENABLED='false')
        create = ['quickstart', 'create', self.server.env_dir, '--workers', str(pg.workers), '--base-port',
                  str(self.server.port)]
        if self.odb == 'postgresql':
            self.db = f'zato_bench_pubsub_{os.getpid()}'
            admin = self.pg_admin()
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE {self.db}')
            admin.close()
            create += ['--odb', 'postgresql', '--odb-host', pg.pg_host, '--odb-port', str(pg.pg_port),
                       '--odb-user', pg.pg_user, '--odb-db-name', self.db]
        servers.zato_cli(*create)
        self.server.start()
        client = self.server.admin()
        client.call('POST', '/zato/admin/security', {'name': USER, 'kind': 'basic_auth', 'username': USER,
                                                    'password': PASSWORD})
        client.call('POST', '/zato/admin/pubsub/topics', {'name': TOPIC, 'max_depth_gd': 100_000_000})
        client.call('POST', '/zato/admin/pubsub/endpoints', {
            'name': USER, 'endpoint_type': 'rest', 'role': 'pub-sub', 'security': USER,
            'topic_patterns': 'pub=/bench/**\nsub=/bench/**'})
        # Every worker must know the endpoint (the bus tells each one): a publication with no
        # subscription yet must be accepted by all of them
        deadline = time.monotonic() + 30
        ok = 0
        while ok < 4 * self.args.workers:
            status, body = servers.http_call(self.server.base_url + '/zato/pubsub/topic' + TOPIC, 'POST',
                                             b'{"data": "x"}', headers={'Authorization': AUTH, 'Connection': 'close'})
            ok = ok + 1 if status == 200 else 0
            if time.monotonic() > deadline:
                raise servers.ServerError(f'the endpoint is not known to every worker: HTTP {status} {body[:200]!r}')
        self.set_subscriptions(0)  # drops what the checks above left queued

    def worker_pids(self) -> list[int]:
        return self.server.worker_pids()

    def pg_admin(self) -> Any:
        import psycopg2
        pg = self.args
        conn = psycopg2.connect(host=pg.pg_host, port=pg.pg_port, user=pg.pg_user, password=pg.pg_password,
                                dbname='postgres')
        conn.autocommit = True
        return conn

    def pg_backends(self) -> list[int]:
        """The server processes of the bench database's connections (the Zato workers' pools)."""
        if not self.db:
            return []
        if self._pg is None:
            self._pg = self.pg_admin()
        with self._pg.cursor() as cur:
            cur.execute('SELECT pid FROM pg_stat_activity WHERE datname = %s', (self.db,))
            return [int(row[0]) for row in cur.fetchall()]

    def pg_waits(self, seconds: float) -> dict[str, Any]:
        """What the bench database's backends are doing, sampled every 5 ms: (state, wait event) -> share."""
        conn = self.pg_admin()
        seen: dict[str, int] = {}
        samples = 0
        try:
            with conn.cursor() as cur:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    cur.execute("SELECT state, wait_event_type, wait_event, left(query, 40) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                                (self.db,))
                    for state, wtype, wevent, query in cur.fetchall():
                        if state == 'idle' and query.startswith('LISTEN'):
                            continue  # the bus
                        key = f'{state} | {wtype or "-"}:{wevent or "-"} | {" ".join(query.split())}'
                        seen[key] = seen.get(key, 0) + 1
                    samples += 1
                    time.sleep(0.005)
        finally:
            conn.close()
        return {'samples': samples, 'per_sample': {k: round(v / samples, 3) for k, v in
                                                   sorted(seen.items(), key=lambda kv: -kv[1])}}

    def set_subscriptions(self, count: int) -> list[str]:
        client = ZatoClient(self.server.port)
        try:
            for sub_key in self.sub_keys:
                client.conn.request('DELETE', f'/zato/pubsub/subscribe/topic{TOPIC}?sub_key={sub_key}',
                                    headers={'Authorization': AUTH})
                client.conn.getresponse().read()
            self.sub_keys = []
            # An endpoint has one subscription per topic: each subscription here is of an endpoint of its own
            for i in range(count):
                sub_key = self._subscribe(client, i)
                self.sub_keys.append(sub_key)
        finally:
            client.close()
        return self.sub_keys

    def _sub_only_endpoint(self, user: str) -> str:
        """A sub-only REST endpoint of its own Basic Auth user (made once); the user's name."""
        if user not in self._extra_users:
            admin = self.server.admin()
            admin.call('POST', '/zato/admin/security', {'name': user, 'kind': 'basic_auth', 'username': user,
                                                        'password': PASSWORD})
            admin.call('POST', '/zato/admin/pubsub/endpoints', {
                'name': user, 'endpoint_type': 'rest', 'role': 'sub-only', 'security': user,
                'topic_patterns': 'sub=/bench/**'})
            self._extra_users.add(user)
        return user

    def _subscribe(self, client: ZatoClient, i: int) -> str:
        user = USER if i == 0 else f'{USER}-{i}'
        if i:
            self._sub_only_endpoint(user)
        auth = 'Basic ' + base64.b64encode(f'{user}:{PASSWORD}'.encode()).decode()
        deadline = time.monotonic() + 30
        while True:
            status, body = servers.http_call(f'{self.server.base_url}/zato/pubsub/subscribe/topic{TOPIC}', 'POST',
                                             headers={'Authorization': auth})
            if status == 200:
                return str(json.loads(body)['sub_key'])
            if time.monotonic() > deadline:
                raise servers.ServerError(f'subscribe {user}: HTTP {status} {body[:200]!r}')
            time.sleep(0.2)

    def publish_load(self, connections: int, duration: float, size: int,
                     profile: str = '') -> tuple[int, dict[str, Any], float]:
        body = json.dumps({'data': payload(size)}).encode()
        spy = None
        if profile:
            # py-spy samples one worker for most of the run: folded stacks, one a line, and their counts
            py_spy = os.path.join(os.path.dirname(sys.executable), 'py-spy')
            spy = subprocess.Popen([py_spy, 'record', '--pid', str(self.worker_pids()[0]), '--rate', '200',
                                    '--duration', str(max(1, int(duration) - 1)), '--format', 'raw',
                                    '-o', profile], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        waits: dict[str, Any] = {}
        sampler = None
        if spy is not None:  # and what the database's backends wait for meanwhile
            sampler = threading.Thread(target=lambda: waits.update(self.pg_waits(max(1.0, duration - 2))))
            sampler.start()
        result = wrk.run(self.server.base_url + '/zato/pubsub/topic' + TOPIC, duration=duration,
                         connections=connections, cpu=None, method='POST', body=body,
                         headers={'Authorization': AUTH}, timeout_s=10)
        out = result.to_dict()
        if spy is not None and sampler is not None:
            spy.wait(timeout=60)
            sampler.join()
            out['pg_activity'] = waits
        out['errors_total'] = result.errors
        return result.requests - result.errors_status, out, result.cpu_s

    def fill(self, count: int, size: int) -> None:
        client = ZatoClient(self.server.port)
        try:
            left = count
            while left:
                n = min(1000, left)
                client.publish({'data_list': [{'data': payload(size)} for _ in range(n)]})
                left -= n
        finally:
            client.close()

    def drain(self, consumers: int, batch: int, expected: int) -> tuple[int, dict[str, Any]]:
        sub_key = self.sub_keys[0]
        got = [0] * consumers
        errors: list[str] = []

        def consume(i: int) -> None:
            client = ZatoClient(self.server.port)
            empty = 0
            try:
                while empty < 2:
                    msgs = client.call('/zato/pubsub/msg/pull', {'sub_key': sub_key, 'max_messages': batch,
                                                                 'visibility_timeout': 60})
                    if not msgs:
                        empty += 1
                        continue
                    empty = 0
                    client.call('/zato/pubsub/msg/ack', {'sub_key': sub_key, 'msg_ids': [m['msg_id'] for m in msgs]})
                    got[i] += len(msgs)
            except Exception as e:  # reported with the result
                errors.append(repr(e))
            finally:
                client.close()

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(consumers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(got), {'errors': errors}

    def latency(self, rate: float, duration: float, size: int) -> dict[str, Any]:
        sub_key = self.sub_keys[0]
        sent: dict[str, float] = {}
        lat: list[float] = []
        done = threading.Event()
        polls = [0, 0]  # pulls, empty pulls
        data = payload(size)

        def consumer() -> None:
            client = ZatoClient(self.server.port)
            try:
                while not done.is_set() or len(lat) < len(sent):
                    msgs = client.call('/zato/pubsub/msg/pull', {'sub_key': sub_key, 'max_messages': 100})
                    polls[0] += 1
                    if not msgs:
                        polls[1] += 1
                        if done.is_set() and time.monotonic() - done_at[0] > 5:
                            break
                        continue
                    client.call('/zato/pubsub/msg/ack', {'sub_key': sub_key, 'msg_ids': [m['msg_id'] for m in msgs]})
                    now = time.monotonic()
                    lat.extend(now - m['data']['t'] for m in msgs)
            finally:
                client.close()

        done_at = [0.0]
        thread = threading.Thread(target=consumer)
        thread.start()
        client = ZatoClient(self.server.port)
        try:
            for t in paced(rate, duration):
                msg_id = client.publish({'data': {'t': t, 'pad': data}})['msg_id']
                sent[msg_id] = t
        finally:
            client.close()
            done_at[0] = time.monotonic()
            done.set()
            thread.join()
        return {'sent': len(sent), 'received': len(lat), 'pulls': polls[0], 'empty_pulls': polls[1],
                'p50_ms': round(1000 * percentile(lat, 50), 2), 'p99_ms': round(1000 * percentile(lat, 99), 2),
                'max_ms': round(1000 * max(lat, default=0.0), 2)}

    def push_latency(self, rate: float, duration: float, size: int, load: int = 0) -> dict[str, Any]:
        """Publish -> push to a REST subscriber: a notify subscription pushes through an outgoing REST
        connection to a receiver in this process (a threaded http.server); a message's latency is from
        the moment its publication is sent to its receipt (the receiver answers 200 after noting it).
        With `load`, wrk publishes to the same topic over `load` connections meanwhile: the latency is
        then that of a probe among them, all of whose messages are pushed too."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        lat: list[float] = []
        other = [0]
        lock = threading.Lock()

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                got = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                with lock:
                    for m in body if isinstance(body, list) else [body]:
                        if isinstance(m['data'], dict):
                            lat.append(got - m['data']['t'])
                        else:
                            other[0] += 1  # wrk's
                self.send_response(200)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'{}')

            def log_message(self, *args: Any) -> None:
                pass

        receiver = ThreadingHTTPServer(('127.0.0.1', 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        admin = self.server.admin()
        user = self._sub_only_endpoint(f'{USER}-push')
        receiver_name = f'bench-receiver-{receiver.server_address[1]}'
        admin.call('POST', '/zato/admin/outconns/rest', {
            'name': receiver_name, 'address_host': f'http://127.0.0.1:{receiver.server_address[1]}',
            'address_url_path': '/got'})
        sub = admin.call('POST', '/zato/admin/pubsub/subscriptions', {
            'endpoint': user, 'topic': TOPIC, 'delivery_method': 'notify', 'out_rest': receiver_name,
            'delivery_batch_size': 100})
        data = payload(size)
        sent = 0
        loaded: dict[str, Any] = {}
        client = ZatoClient(self.server.port)
        try:
            time.sleep(3)  # a delivery task takes the subscription (every worker looks every task_sync_interval)
            wrk_thread = None
            if load:
                wrk_thread = threading.Thread(target=lambda: loaded.update(
                    self.publish_load(load, duration + 1, size)[1]))
                wrk_thread.start()
                time.sleep(0.5)
            started = time.monotonic()
            for t in paced(rate, duration):
                client.publish({'data': {'t': t, 'pad': data}})
                sent += 1
            if wrk_thread is not None:
                wrk_thread.join()
            deadline = time.monotonic() + 30
            expected = sent + loaded.get('requests', 0) - loaded.get('errors', {}).get('status', 0)
            while (len(lat) < sent or len(lat) + other[0] < expected) and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        finally:
            client.close()
            admin.call('DELETE', f'/zato/admin/pubsub/subscriptions/{sub["id"]}')
            receiver.shutdown()
        return {'sent': sent, 'received': len(lat), 'load_connections': load,
                'load_published_per_s': loaded.get('rps', 0), 'pushed_total': len(lat) + other[0],
                'pushed_per_s': round((len(lat) + other[0]) / elapsed, 1),
                'p50_ms': round(1000 * percentile(lat, 50), 2),
                'p99_ms': round(1000 * percentile(lat, 99), 2), 'max_ms': round(1000 * max(lat, default=0.0), 2)}

    def stop(self) -> None:
        if self._pg is not None:
            self._pg.close()
        try:
            self.server.stop()
        finally:
            if self.db:
                admin = self.pg_admin()
                with admin.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS {self.db} WITH (FORCE)')
                admin.close()


# ################################################################################################ RabbitMQ

class RabbitSide:
    """The machine's RabbitMQ: a durable fanout exchange, `count` durable queues bound to it."""

    name = 'rabbitmq'

    def __init__(self, args: argparse.Namespace) -> None:
        try:
            import pika
        except ImportError:
            raise SystemExit('bench/pubsub.py needs pika: .venv/bin/pip install -r bench/requirements.txt') from None
        self.pika = pika
        self.params = pika.ConnectionParameters(args.amqp_host, args.amqp_port,
                                                credentials=pika.PlainCredentials('guest', 'guest'))
        self.queues: list[str] = []

    def start(self) -> None:
        conn = self.pika.BlockingConnection(self.params)
        ch = conn.channel()
        ch.exchange_declare(EXCHANGE, 'fanout', durable=True)
        conn.close()

    def worker_pids(self) -> list[int]:
        return []

    def set_subscriptions(self, count: int) -> list[str]:
        conn = self.pika.BlockingConnection(self.params)
        ch = conn.channel()
        for q in self.queues:
            ch.queue_delete(q)
        self.queues = [f'{EXCHANGE}-{i}' for i in range(count)]
        for q in self.queues:
            ch.queue_declare(q, durable=True)
            ch.queue_purge(q)
            ch.queue_bind(q, EXCHANGE)
        conn.close()
        return self.queues

    def _publisher(self, window: int, body: bytes, until: float | None, total: int | None,
                   make_body: Any = None) -> dict[str, Any]:
        """Publishes persistent messages with confirms, `window` unconfirmed at most, for `until`
        (a monotonic time) or `total` messages; how many were confirmed, and their latencies."""
        pika = self.pika
        props = pika.BasicProperties(delivery_mode=2, content_type='application/json')
        state: dict[str, Any] = {'tag': 0, 'confirmed': 0, 'nacked': 0, 'sent': 0, 'lat': []}
        pending: dict[int, float] = {}

        def more(ch: Any) -> None:
            now = time.monotonic()
            while len(pending) < window and (until is None or now < until) and (total is None or state['sent'] < total):
                ch.basic_publish(EXCHANGE, '', make_body() if make_body else body, props)
                state['tag'] += 1
                state['sent'] += 1
                pending[state['tag']] = now
            if not pending:
                conn.close()

        def on_confirm(frame: Any) -> None:
            method = frame.method
            tags = [t for t in pending if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
            now = time.monotonic()
            for t in tags:
                state['lat'].append(now - pending.pop(t))
            if isinstance(method, pika.spec.Basic.Ack):
                state['confirmed'] += len(tags)
            else:
                state['nacked'] += len(tags)
            more(channel[0])

        channel: list[Any] = []

        def on_channel(ch: Any) -> None:
            channel.append(ch)
            ch.confirm_delivery(on_confirm, callback=lambda _frame: more(ch))

        conn = pika.SelectConnection(self.params, on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                                     on_close_callback=lambda c, reason: c.ioloop.stop())
        conn.ioloop.start()
        return state

    def publish_load(self, connections: int, duration: float, size: int) -> tuple[int, dict[str, Any], float]:
        body = json.dumps({'data': payload(size)}).encode()
        started = time.monotonic()
        state = self._publisher(connections, body, started + duration, None)
        wall = time.monotonic() - started
        lat = state['lat']
        return state['confirmed'], {
            'requests': state['confirmed'], 'duration_s': round(wall, 3), 'rps': round(state['confirmed'] / wall, 1),
            'p50_ms': round(1000 * percentile(lat, 50), 2), 'p99_ms': round(1000 * percentile(lat, 99), 2),
            'max_ms': round(1000 * max(lat, default=0.0), 2), 'nacked': state['nacked'],
            'errors_total': state['nacked']}, 0.0

    def fill(self, count: int, size: int) -> None:
        body = json.dumps({'data': payload(size)}).encode()
        state = self._publisher(500, body, None, count)
        if state['confirmed'] != count:
            raise RuntimeError(f'RabbitMQ confirmed {state["confirmed"]} of {count}')

    def drain(self, consumers: int, batch: int, expected: int) -> tuple[int, dict[str, Any]]:
        queue = self.queues[0]
        got = [0]
        unacked: dict[int, int] = {}

        def on_channel(ch: Any) -> None:
            unacked[ch.channel_number] = 0

            def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
                got[0] += 1
                unacked[ch.channel_number] += 1
                if unacked[ch.channel_number] >= batch or got[0] >= expected:
                    ch.basic_ack(method.delivery_tag, multiple=batch > 1)
                    unacked[ch.channel_number] = 0
                if got[0] >= expected:
                    conn.close()

            ch.basic_qos(prefetch_count=batch, callback=lambda _f: ch.basic_consume(queue, on_message))

        def on_open(c: Any) -> None:
            for _ in range(consumers):
                c.channel(on_open_callback=on_channel)

        conn = self.pika.SelectConnection(self.params, on_open_callback=on_open,
                                          on_close_callback=lambda c, reason: c.ioloop.stop())
        conn.ioloop.call_later(300, conn.close)  # never hangs: what was read by then is reported
        conn.ioloop.start()
        return got[0], {'errors': [] if got[0] >= expected else [f'timed out after {got[0]}']}

    def latency(self, rate: float, duration: float, size: int) -> dict[str, Any]:
        pika = self.pika
        queue = self.queues[0]
        data = payload(size)
        lat: list[float] = []
        sent = [0]
        ready = threading.Event()
        consumer_conn = pika.BlockingConnection(self.params)
        ch = consumer_conn.channel()
        ch.basic_qos(prefetch_count=100)

        def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
            ch.basic_ack(method.delivery_tag)
            lat.append(time.monotonic() - json.loads(body)['data']['t'])

        ch.basic_consume(queue, on_message)

        def consume() -> None:
            ready.set()
            while True:
                consumer_conn.process_data_events(time_limit=0.05)
                if done.is_set() and (len(lat) >= sent[0] or time.monotonic() - done_at[0] > 5):
                    break

        done, done_at = threading.Event(), [0.0]
        thread = threading.Thread(target=consume)
        thread.start()
        ready.wait()
        conn = pika.BlockingConnection(self.params)
        pub = conn.channel()
        pub.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2, content_type='application/json')
        try:
            for t in paced(rate, duration):
                pub.basic_publish(EXCHANGE, '', json.dumps({'data': {'t': t, 'pad': data}}).encode(), props)
                sent[0] += 1
        finally:
            conn.close()
            done_at[0] = time.monotonic()
            done.set()
            thread.join()
            consumer_conn.close()
        return {'sent': sent[0], 'received': len(lat), 'p50_ms': round(1000 * percentile(lat, 50), 2),
                'p99_ms': round(1000 * percentile(lat, 99), 2), 'max_ms': round(1000 * max(lat, default=0.0), 2)}

    def stop(self) -> None:
        try:
            conn = self.pika.BlockingConnection(self.params)
            ch = conn.channel()
            for q in self.queues:
                ch.queue_delete(q)
            ch.exchange_delete(EXCHANGE)
            conn.close()
        except Exception as e:  # noqa: BLE001 - best effort, reported
            log(f'  (RabbitMQ clean-up: {e!r})')


# ################################################################################################ The run

def measured(side: Any, meter: Meter, fn: Any, *args: Any) -> tuple[Any, dict[str, Any]]:
    before, load = meter.sample(), os.getloadavg()[0]
    count, extra, wrk_cpu = fn(*args)
    after = meter.sample()
    wall = after['wall'] - before['wall']
    return count, {**extra, 'count': count, 'wall_s': round(wall, 3),
                   'msg_per_s': round(count / wall, 1) if wall else 0.0,
                   **Meter.per_message(before, after, count, wrk_cpu),
                   'load_1m_before': round(load, 2), 'load_1m_after': round(os.getloadavg()[0], 2)}


def run(args: argparse.Namespace, work_dir: str) -> dict[str, Any]:
    results: dict[str, Any] = {'publish': [], 'drain': [], 'latency': []}
    zato, rabbit = ZatoSide(args, work_dir), RabbitSide(args)
    sides: list[Any] = [zato, rabbit]
    publishers: list[Any] = [zato, rabbit]
    if args.sqlite:
        lite = ZatoSide(args, work_dir, 'sqlite', args.port + 10)
        sides.append(lite)
        publishers.insert(1, lite)
    try:
        for side in sides:
            log(f'- starting {side.name} ...')
            side.start()
        meters = {side.name: Meter(side.worker_pids(), getattr(side, 'pg_backends', None)) for side in sides}
        for subs in args.subs:
            for side in publishers:
                side.set_subscriptions(subs)
            for side in publishers:  # warm-up
                side.publish_load(args.concurrency[-1], args.warmup, args.size)
            for conc in args.concurrency:
                for side in publishers:
                    _, row = measured(side, meters[side.name], side.publish_load, conc, args.duration, args.size)
                    row.update(side=side.name, subscriptions=subs, concurrency=conc, size=args.size)
                    results['publish'].append(row)
                    log(f'  publish {side.name:<8} subs {subs} c {conc:>3}: {row["msg_per_s"]:>8,.0f} msg/s  '
                        f'p50 {row["p50_ms"]:7.2f} ms  p99 {row["p99_ms"]:7.2f} ms  errors {row["errors_total"]}  '
                        f'CPU us/msg zato {row["zato_workers_cpu_us_per_msg"]} pg {row["postgres_cpu_us_per_msg"]} '
                        f'rabbit {row["rabbitmq_cpu_us_per_msg"]} client {row["client_cpu_us_per_msg"]}  '
                        f'load {row["load_1m_after"]}')
            if args.profile and subs == args.subs[0]:
                # An extra run, not in the table (py-spy slows the worker it samples)
                log(f'  profiling one Zato worker: publish, c {args.concurrency[-1]}, {args.duration:.0f} s ...')
                _, row = measured(zato, meters['zato'], zato.publish_load, args.concurrency[-1], args.duration,
                                  args.size, args.profile)
                row.update(subscriptions=subs, concurrency=args.concurrency[-1], profile_file=args.profile)
                results['profiled_publish'] = row
                log(f'    {row["msg_per_s"]:,.0f} msg/s under py-spy; database backends per sample: '
                    f'{list(row["pg_activity"]["per_sample"].items())[:3]}')
        if args.sqlite:
            lite.set_subscriptions(0)  # what follows is PostgreSQL's and RabbitMQ's
        sides_read: list[Any] = [zato, rabbit]
        for side in sides_read:
            side.set_subscriptions(1)
        for batch in args.batches:
            for consumers in args.consumers:
                count = args.fill_per_batch.get(batch, args.fill)
                for side in sides_read:
                    log(f'  filling {side.name} with {count:,} ...')
                    side.fill(count, args.size)

                    def drain(side: Any = side, consumers: int = consumers, batch: int = batch,
                              count: int = count) -> tuple[int, dict[str, Any], float]:
                        n, extra = side.drain(consumers, batch, count)
                        return n, extra, 0.0
                    got, row = measured(side, meters[side.name], drain)
                    row.update(side=side.name, batch=batch, consumers=consumers, filled=count, size=args.size)
                    results['drain'].append(row)
                    log(f'  drain   {side.name:<8} batch {batch:>3} consumers {consumers}: {row["msg_per_s"]:>8,.0f} '
                        f'msg/s ({got:,} of {count:,})  CPU us/msg zato {row["zato_workers_cpu_us_per_msg"]} '
                        f'pg {row["postgres_cpu_us_per_msg"]} rabbit {row["rabbitmq_cpu_us_per_msg"]} '
                        f'client {row["client_cpu_us_per_msg"]}  errors {row["errors"][:1]}  '
                        f'load {row["load_1m_after"]}')
        for side in sides_read:
            side.set_subscriptions(1)
            load = os.getloadavg()[0]
            row = side.latency(args.rate, args.latency_duration, args.size)
            row.update(side=side.name, rate=args.rate, size=args.size, load_1m_before=round(load, 2))
            results['latency'].append(row)
            log(f'  latency {side.name:<8} {args.rate:.0f} msg/s: p50 {row["p50_ms"]} ms  p99 {row["p99_ms"]} ms  '
                f'max {row["max_ms"]} ms  ({row["received"]} of {row["sent"]})')
        for load in args.push_load:
            machine_load = os.getloadavg()[0]
            row = zato.push_latency(args.rate, args.latency_duration, args.size, load)
            name = 'zato-push' if not load else f'zato-push-c{load}'
            row.update(side=name, rate=args.rate, size=args.size, load_1m_before=round(machine_load, 2))
            results['latency'].append(row)
            log(f'  latency {name} {args.rate:.0f} msg/s: p50 {row["p50_ms"]} ms  p99 {row["p99_ms"]} ms  '
                f'max {row["max_ms"]} ms  ({row["received"]} of {row["sent"]}); wrk published '
                f'{row["load_published_per_s"]:,.0f} msg/s, pushed {row["pushed_per_s"]:,.0f} msg/s')
    finally:
        for side in sides:
            try:
                side.stop()
            except Exception as e:  # noqa: BLE001 - the other side is stopped all the same
                log(f'  stopping {side.name}: {e!r}')
    return results


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Zato / RabbitMQ, row by row."""
    out: dict[str, Any] = {'publish': [], 'drain': [], 'latency': {}}
    for kind, keys in (('publish', ('subscriptions', 'concurrency')), ('drain', ('batch', 'consumers'))):
        rows = results[kind]
        for z in (r for r in rows if r['side'] != 'rabbitmq'):
            r = next(x for x in rows if x['side'] == 'rabbitmq' and all(x[k] == z[k] for k in keys))
            out[kind].append({'side': z['side'], **{k: z[k] for k in keys}, 'zato_msg_per_s': z['msg_per_s'],
                              'rabbitmq_msg_per_s': r['msg_per_s'],
                              'ratio': round(z['msg_per_s'] / r['msg_per_s'], 3) if r['msg_per_s'] else None})
    lat = {r['side']: r for r in results['latency']}
    for side in sorted(lat):
        if not side.startswith('zato'):
            continue
        if side in lat and 'rabbitmq' in lat:
            for key in ('p50_ms', 'p99_ms'):
                r = lat['rabbitmq'][key]
                out['latency'][f'{side} {key}'] = round(lat[side][key] / r, 2) if r else None
    return out


def show(out: dict[str, Any]) -> None:
    log('')
    log('publish (msg/s, Zato / RabbitMQ)')
    for r in out['ratios']['publish']:
        log(f'  {r["side"]:<11} subs {r["subscriptions"]} c {r["concurrency"]:>3}: {r["zato_msg_per_s"]:>9,.0f} / '
            f'{r["rabbitmq_msg_per_s"]:>9,.0f} = {r["ratio"]}x')
    log('drain (msg/s, Zato / RabbitMQ)')
    for r in out['ratios']['drain']:
        log(f'  batch {r["batch"]:>3} consumers {r["consumers"]}: {r["zato_msg_per_s"]:>9,.0f} / '
            f'{r["rabbitmq_msg_per_s"]:>9,.0f} = {r["ratio"]}x')
    log(f'latency (Zato / RabbitMQ): {out["ratios"]["latency"]}')


# Where a sample of the worker is, by its innermost frame (the first rule that matches)
PROFILE_GROUPS = (
    ('idle in the gevent hub (waiting for a socket: the client, PostgreSQL)', ('Hub.run',)),
    ('psycopg2 in C: sending a statement, its green wait (zato.odb.gevent_psycopg), commit, pre-ping',
     ('do_execute', 'gevent_psycopg', 'do_commit', 'do_ping', 'do_begin', 'do_rollback')),
    ('SQLAlchemy in Python: cache keys of text(), results, the pool', ('sqlalchemy/',)),
    ('gevent socket methods', ('gevent/_socketcommon', 'gevent/_socket3')),
)


def show_profile(path: str) -> dict[str, float]:
    """Shares of a --profile file's samples by PROFILE_GROUPS (innermost frame), and of the store's
    statements (any frame)."""
    total = 0
    groups: dict[str, int] = {}
    frames: dict[str, int] = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            stack, _, count = line.rstrip('\n').rpartition(' ')
            n = int(count)
            total += n
            stack_frames = stack.split(';')
            leaf = stack_frames[-1]
            group = next((name for name, marks in PROFILE_GROUPS if any(m in leaf for m in marks)), 'other')
            groups[group] = groups.get(group, 0) + n
            for frame in set(stack_frames):
                if 'zato/' in frame:
                    frames[frame] = frames.get(frame, 0) + n
    out = {name: round(100 * n / total, 1) for name, n in sorted(groups.items(), key=lambda kv: -kv[1])}
    log(f'{total} samples')
    for name, share in out.items():
        log(f'  {share:5.1f}%  {name}')
    log('frames of zato/ on the stack, the 12 most frequent:')
    for frame, n in sorted(frames.items(), key=lambda kv: -kv[1])[:12]:
        log(f'  {100 * n / total:5.1f}%  {frame}')
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='a smoke run: 2 s runs, small queues')
    p.add_argument('--duration', type=float, default=8, help='seconds per publish run')
    p.add_argument('--warmup', type=float, default=3)
    p.add_argument('--concurrency', default='1,10,50')
    p.add_argument('--subs', default='1,2', help='subscriptions (queues) per topic')
    p.add_argument('--batches', default='1,100')
    p.add_argument('--consumers', default='1,4')
    p.add_argument('--fill', type=int, default=20_000, help='messages pre-filled per drain at batch 100')
    p.add_argument('--fill-1', type=int, default=3_000, help='... at batch 1')
    p.add_argument('--size', type=int, default=256, help='bytes of data per message')
    p.add_argument('--rate', type=float, default=100, help='messages per second in the latency run')
    p.add_argument('--latency-duration', type=float, default=10)
    p.add_argument('--push-load', default='0,10',
                   help='push latency runs: wrk publishing over this many connections meanwhile (0: none)')
    p.add_argument('--workers', type=int, default=2, help="the Zato server's workers")
    p.add_argument('--sqlite', action=argparse.BooleanOptionalAction, default=True,
                   help='publish to a second Zato, on SQLite, too (port --port + 10)')
    p.add_argument('--port', type=int, default=17480)
    p.add_argument('--pg-host', default=os.environ.get('ZATO_TEST_PG_HOST', '127.0.0.1'))
    p.add_argument('--pg-port', type=int, default=int(os.environ.get('ZATO_TEST_PG_PORT', '5432')))
    p.add_argument('--pg-user', default=os.environ.get('ZATO_TEST_PG_USER', 'zato_test'))
    p.add_argument('--pg-password', default=os.environ.get('ZATO_TEST_PG_PASSWORD', 'zato_test'))
    p.add_argument('--amqp-host', default='127.0.0.1')
    p.add_argument('--amqp-port', type=int, default=5672)
    p.add_argument('--profile', help='py-spy folded stacks of one Zato worker during the first publish run at the '
                   'highest concurrency, to this file (see --show-profile)')
    p.add_argument('--show-profile', help='print where the samples of a --profile file are, and exit')
    p.add_argument('--json', help='write the results here')
    p.add_argument('--note', default='', help='a caveat to keep with the results')
    p.add_argument('--keep', action='store_true', help="keep the environments' directories and logs (the servers "
                   'are stopped and the database dropped all the same)')
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.fill, args.fill_1, args.latency_duration = 2, 1, 500, 100, 2
        args.concurrency, args.consumers = '1,10', '1'
    args.concurrency = [int(x) for x in args.concurrency.split(',')]
    args.subs = [int(x) for x in args.subs.split(',')]
    args.batches = [int(x) for x in args.batches.split(',')]
    args.consumers = [int(x) for x in args.consumers.split(',')]
    args.push_load = [int(x) for x in args.push_load.split(',')]
    args.fill_per_batch = {1: args.fill_1}
    return args


def machine() -> dict[str, Any]:
    def first(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ''
    return {'nproc': os.cpu_count(), 'uptime': first(['uptime']),
            'rabbitmq': first(['rabbitmqctl', 'version']), 'python': sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show_profile:
        show_profile(args.show_profile)
        return 0
    work_dir = tempfile.mkdtemp(prefix='zato-bench-pubsub-')
    state_before = machine()
    log(f'- machine: {state_before["uptime"]}')
    try:
        results = run(args, work_dir)
    finally:
        if not args.keep:
            subprocess.run(['rm', '-rf', work_dir], check=False)
    out = {'results': results, 'ratios': ratios(results), 'machine_before': state_before,
           'uptime_after': machine()['uptime'], 'note': args.note,
           'args': {k: v for k, v in vars(args).items() if k not in ('json', 'keep', 'note', 'pg_password')},
           'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    show(out)
    log(f'- machine after: {out["uptime_after"]}')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(out, f, indent=2)
            f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
