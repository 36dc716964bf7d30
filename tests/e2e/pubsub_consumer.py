"""A subscriber of the guarantee checker (tests/e2e/test_pubsub_guarantee.py), run as a process of its
own so that the test can SIGKILL it: pulls from the servers in turn, records each message it got
(one line per message, its msg_id and data, flushed) and only then acknowledges it.

argv: a JSON object {urls, auth, sub_key, topic, mode, log, marker, slow, idle}. `mode` `ack` uses the
acknowledged pull; `delete` uses 3.1's get-messages, which deletes what it returns (the loss the
checker must catch). With `slow`, it writes `marker` right after each pull and sleeps `slow` seconds
before recording: a SIGKILL then finds it holding a batch it has not recorded. It stops after `idle`
seconds without a message.
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
    with open(cfg['log'], 'a', encoding='utf-8') as log:
        for url in itertools.cycle(cfg['urls']):
            try:
                if cfg['mode'] == 'ack':
                    r = session.post(f'{url}/zato/pubsub/msg/pull', json={
                        'sub_key': cfg['sub_key'], 'max_messages': 20, 'visibility_timeout': 2}, auth=auth, timeout=10)
                else:
                    r = session.get(f'{url}/zato/pubsub/topic{cfg["topic"]}', params={
                        'sub_key': cfg['sub_key'], 'max_messages': 20}, auth=auth, timeout=10)
            except requests.RequestException:
                time.sleep(0.1)
                continue
            if r.status_code != 200:
                time.sleep(0.1)
                continue
            batch = r.json()
            if not batch:
                if time.monotonic() - last_message > cfg['idle']:
                    return
                time.sleep(0.1)
                continue
            last_message = time.monotonic()
            if cfg.get('slow'):
                with open(cfg['marker'], 'a', encoding='utf-8') as marker:
                    marker.write(f'{len(batch)}\n')
                time.sleep(cfg['slow'])
            for msg in batch:
                log.write(f"{msg['msg_id']}\t{msg['data']}\n")
            log.flush()
            if cfg['mode'] == 'ack':
                try:
                    session.post(f'{url}/zato/pubsub/msg/ack', json={
                        'sub_key': cfg['sub_key'], 'msg_ids': [m['msg_id'] for m in batch]}, auth=auth, timeout=10)
                except requests.RequestException:
                    pass  # a worker killed meanwhile: the batch comes again once invisible no more



if __name__ == '__main__':
    main()
