"""Each integration peer speaks its real protocol to the client library Zato's connector will use."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.peers import KafkaPeer, LDAPPeer, MongoPeer, Peer, SSHPeer, port_open, process_tree
from tests.integration.peers_mail import DovecotPeer, SMTPPeer


def test_mongo_peer_pings_inserts_and_finds(mongo_peer):
    import pymongo

    with pymongo.MongoClient(mongo_peer.uri, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command('ping')['ok'] == 1
        coll = client['zato_test'][f'peers_{uuid.uuid4().hex[:8]}']
        coll.insert_many([{'n': n, 'name': f'n{n}'} for n in range(3)])
        assert [doc['name'] for doc in coll.find({'n': {'$gte': 1}}, {'_id': False}).sort('n')] == ['n1', 'n2']


def test_mongo_auth_peer_requires_its_credentials(mongo_auth_peer):
    import pymongo
    from pymongo.errors import OperationFailure

    with pymongo.MongoClient(mongo_auth_peer.uri, serverSelectionTimeoutMS=5000) as client:
        client['zato_test'].items.insert_one({'k': 1})
        assert client['zato_test'].items.find_one({'k': 1}, {'_id': False}) == {'k': 1}

    with pymongo.MongoClient(mongo_auth_peer.host, mongo_auth_peer.port, serverSelectionTimeoutMS=5000) as client:
        with pytest.raises(OperationFailure, match='requires authentication'):
            client['zato_test'].items.find_one()

    with pymongo.MongoClient(mongo_auth_peer.host, mongo_auth_peer.port, username=mongo_auth_peer.user,
                             password='wrong', authSource='admin', serverSelectionTimeoutMS=5000) as client:
        with pytest.raises(OperationFailure, match='uthentication failed'):
            client.admin.command('ping')


def test_kafka_peer_returns_what_was_produced_to_a_new_topic(kafka_peer):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({'bootstrap.servers': kafka_peer.bootstrap})
    assert admin.list_topics(timeout=10).brokers

    topic = f'zato-test-{uuid.uuid4().hex[:8]}'
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(timeout=10)
    assert topic in admin.list_topics(timeout=10).topics

    producer = Producer({'bootstrap.servers': kafka_peer.bootstrap})
    delivered = []
    for n in range(3):
        producer.produce(topic, key=f'k{n}', value=f'v{n}', on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    assert producer.flush(10) == 0
    assert delivered == [(None, 0), (None, 1), (None, 2)]

    # assign(), not subscribe(): joining a consumer group takes seconds on Tansu
    consumer = Consumer({'bootstrap.servers': kafka_peer.bootstrap, 'group.id': topic, 'enable.auto.commit': False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        received = []
        while len(received) < 3:
            msg = consumer.poll(10)
            assert msg is not None, f'only {received} arrived'
            assert msg.error() is None, msg.error()
            received.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    assert received == [(b'k0', b'v0'), (b'k1', b'v1'), (b'k2', b'v2')]


def test_ldap_peer_binds_admin_and_users_and_refuses_a_wrong_password(ldap_peer):
    import ldap3

    server = ldap3.Server(ldap_peer.url, connect_timeout=5)
    with ldap3.Connection(server, ldap_peer.bind_dn, ldap_peer.password, auto_bind=True) as admin:
        assert admin.extend.standard.who_am_i() == f'dn:{ldap_peer.bind_dn}'
        admin.search(ldap_peer.people_dn, '(objectClass=inetOrgPerson)', attributes=['uid', 'mail'])
        assert sorted(str(entry.uid) for entry in admin.entries) == ['alice', 'bob']
        admin.search(ldap_peer.groups_dn, f'(member={ldap_peer.users[0][0]})', attributes=['cn'])
        assert [str(entry.cn) for entry in admin.entries] == ['devs']

    for dn, password in ldap_peer.users:
        with ldap3.Connection(server, dn, password, auto_bind=True) as user:
            assert user.extend.standard.who_am_i() == f'dn:{dn}'

    refused = ldap3.Connection(server, ldap_peer.users[0][0], 'wrong')
    assert not refused.bind()
    assert refused.result['description'] == 'invalidCredentials'


def test_ssh_peer_runs_a_command_with_a_password_and_with_a_key(ssh_peer):
    from pssh.clients import ParallelSSHClient

    for auth in ({'password': ssh_peer.password}, {'pkey': ssh_peer.key_path}):
        client = ParallelSSHClient([ssh_peer.host], port=ssh_peer.port, user=ssh_peer.user, num_retries=1, timeout=10, **auth)
        output = client.run_command('echo hi')
        client.join(output)
        assert [(list(out.stdout), out.exit_code) for out in output] == [(['hi'], 0)], auth.keys()


def test_ssh_peer_serves_sftp_and_proves_its_host_key(ssh_peer, tmp_path):
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(ssh_peer.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(ssh_peer.host, ssh_peer.port, username=ssh_peer.user, key_filename=ssh_peer.key_path,
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        assert client.get_transport().get_remote_server_key().fingerprint == ssh_peer.host_key_fingerprint
        local = tmp_path / 'put.bin'
        local.write_bytes(os.urandom(256 * 1024))
        with client.open_sftp() as sftp:
            sftp.chdir(os.path.basename(ssh_peer.remote_dir))
            sftp.put(str(local), 'zato.bin')
            assert sftp.listdir() == ['zato.bin']
            sftp.get('zato.bin', str(tmp_path / 'got.bin'))
            sftp.remove('zato.bin')
            assert sftp.listdir() == []
    finally:
        client.close()
    assert (tmp_path / 'got.bin').read_bytes() == local.read_bytes()


def test_the_smtp_peer_takes_mail_over_starttls_after_auth_and_relays_it_to_the_dovecot_peer(smtp_peer, dovecot_peer):
    import imaplib
    import smtplib
    import ssl

    subject = f'peers {uuid.uuid4().hex}'
    with smtplib.SMTP(smtp_peer.host, smtp_peer.port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn('auth')  # only after STARTTLS
        smtp.starttls(context=ssl.create_default_context(cafile=smtp_peer.ca_file))
        smtp.login(smtp_peer.user, smtp_peer.password)
        assert smtp.sendmail('bob@example.org', ['bob@example.org'], f'Subject: {subject}\r\n\r\nhi\r\n') == {}
    assert smtp_peer.wait_for(1)[-1]['login'] == smtp_peer.user

    with imaplib.IMAP4_SSL(dovecot_peer.host, dovecot_peer.ssl_port, ssl_context=dovecot_peer.tls(), timeout=10) as imap:
        imap.login('bob@example.org', dovecot_peer.users['bob@example.org'])
        imap.select('INBOX')
        _, data = imap.search(None, 'SUBJECT', f'"{subject}"')
        assert len(data[0].split()) == 1
    with imaplib.IMAP4(dovecot_peer.host, dovecot_peer.port, timeout=10) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login('bob@example.org', 'wrong')


@pytest.mark.parametrize('peer_class', [MongoPeer, KafkaPeer, LDAPPeer, SSHPeer, DovecotPeer, SMTPPeer],
                         ids=lambda cls: cls.name)
def test_a_stopped_peer_leaves_its_port_closed_and_nothing_behind(peer_class: type[Peer]):
    with peer_class() as peer:
        assert peer.proc is not None
        port, pid, where = peer.port, peer.proc.pid, peer.dir
        assert port_open(port)
    assert not peer.running
    assert not port_open(port)
    assert not process_tree(pid)
    assert not os.path.exists(where)
    if isinstance(peer, SSHPeer):
        assert not os.path.exists(peer.remote_dir)
