"""A subscriber of the guarantee checker (tests/e2e/test_pubsub_guarantee.py), run as a process of its
own so that the test can SIGKILL it: pulls from the servers in turn, records each pull it made and only
then acknowledges what it got.

The log has one JSON object a line, flushed, one per pull: `t0` and `t1`, the machine's monotonic
clock (the same in every process) before the request and once the answer came, and either `msgs`,
a list of [msg_id, delivery_count, data], or `failed` (no answer, or not a 200: the pull's
transaction may have been rolled back). The checker orders pulls by these times.

argv: a JSON object {urls, auth, sub_key, topic, mode, log, marker, slow, slow_marker, stall, idle,
give_up}. `mode`
`ack` uses the acknowledged pull; `delete` uses 3.1's get-messages, which deletes what it returns
(the loss the checker must catch). With `slow`, it sleeps `slow` seconds after each pull before
recording it (a slow subscriber; its batches may outlive their visibility timeout); with
`slow_marker` too, it writes `marker` right after each pull: a SIGKILL then finds it holding a batch
it has not recorded. With `stall`, [n, seconds], every n-th batch takes `seconds` instead (longer than
the visibility timeout: the batch is handed out again meanwhile). It stops after `idle` seconds
without a message, or after `give_up` seconds without one when pulls fail.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import requests


def main() -> None:
    cfg = json.loads(sys.argv[1])
    auth = tuple(cfg['auth'])
    session = requests.Session()
    last_message = time.monotonic()
    batches = 0
    with open(cfg['log'], 'a', encoding='utf-8') as log:

        def record(entry: dict) -> None:
            log.write(json.dumps(entry) + '\n')
            log.flush()

        for url in itertools.cycle(cfg['urls']):
            t0 = time.monotonic()
            try:
                if cfg['mode'] == 'ack':
                    r = session.post(f'{url}/zato/pubsub/msg/pull', json={
                        'sub_key': cfg['sub_key'], 'max_messages': 20, 'visibility_timeout': 2}, auth=auth, timeout=10)
                else:
                    r = session.get(f'{url}/zato/pubsub/topic{cfg["topic"]}', params={
                        'sub_key': cfg['sub_key'], 'max_messages': 20}, auth=auth, timeout=10)
                status = r.status_code
            except requests.RequestException:
                status = 0
            t1 = time.monotonic()
            if status != 200:
                record({'t0': t0, 't1': t1, 'failed': status})
                if time.monotonic() - last_message > cfg['give_up']:
                    return  # the servers are gone (a test that failed has stopped them)
                time.sleep(0.1)
                continue
            batch = r.json()
            if not batch:
                if time.monotonic() - last_message > cfg['idle']:
                    return
                time.sleep(0.1)
                continue
            last_message = time.monotonic()
            batches += 1
            if cfg.get('slow'):
                if cfg.get('slow_marker'):
                    with open(cfg['marker'], 'a', encoding='utf-8') as marker:
                        marker.write(f'{len(batch)}\n')
                stall = cfg.get('stall')
                time.sleep(stall[1] if stall and batches % stall[0] == 0 else cfg['slow'])
            record({'t0': t0, 't1': t1, 'msgs': [[m['msg_id'], m['delivery_count'], m['data']] for m in batch]})
            if cfg['mode'] == 'ack':
                try:
                    session.post(f'{url}/zato/pubsub/msg/ack', json={
                        'sub_key': cfg['sub_key'], 'msg_ids': [m['msg_id'] for m in batch]}, auth=auth, timeout=10)
                except requests.RequestException:
                    pass  # a worker killed meanwhile: the batch comes again once invisible no more


if __name__ == '__main__':
    main()
