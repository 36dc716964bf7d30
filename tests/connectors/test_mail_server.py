"""The fields SMTP and IMAP connections share, the TLS context made from them, the wire log that never
shows a password, and the hold on credentials the server refused."""

from __future__ import annotations

import logging
import ssl

import pytest

from zato.connectors import registry
from zato.connectors.base import ConnectorAuthError, FieldError, validate
from zato.connectors.imap import IMAPConnector
from zato.connectors.mail_server import AuthHold, WireLog, tls_context
from zato.connectors.smtp import SMTPConnector


def test_both_kinds_are_built_in_under_their_own_names():
    assert registry.get('smtp') is SMTPConnector and registry.get('imap') is IMAPConnector


@pytest.mark.parametrize('cls, mode, port', [(SMTPConnector, 'plain', 25), (SMTPConnector, 'ssl', 465),
                                             (SMTPConnector, 'starttls', 587), (IMAPConnector, 'plain', 143),
                                             (IMAPConnector, 'ssl', 993), (IMAPConnector, 'starttls', 143)])
def test_a_port_of_0_is_the_modes_standard_port(cls, mode, port):
    config, _ = validate(cls.fields, {'host': 'mail.example.com', 'username': 'u', 'mode': mode})
    assert config['port'] == 0 and cls('c', config).port == port
    config, _ = validate(cls.fields, {'host': 'mail.example.com', 'username': 'u', 'mode': mode, 'port': 2525})
    assert cls('c', config).port == 2525


def test_the_defaults_are_31s_where_it_had_them_and_tls_verified():
    smtp, _ = validate(SMTPConnector.fields, {'host': 'mail.example.com'})
    assert (smtp['timeout'], smtp['mode'], smtp['tls_verify'], smtp['username'], smtp['is_debug']) == \
        (10.0, 'starttls', True, '', False)
    imap, _ = validate(IMAPConnector.fields, {'host': 'mail.example.com', 'username': 'u'})
    assert (imap['timeout'], imap['mode'], imap['get_criteria'], imap['debug_level'], imap['tls_verify']) == \
        (10.0, 'ssl', 'UNSEEN', 0, True)


@pytest.mark.parametrize('cls, data, field', [
    (SMTPConnector, {'host': 'mail.example.com\r\nRCPT'}, 'host'),
    (SMTPConnector, {'host': 'smtp://mail.example.com'}, 'host'),
    (SMTPConnector, {'host': 'h', 'port': 70000}, 'port'),
    (SMTPConnector, {'host': 'h', 'mode': 'tls'}, 'mode'),
    (SMTPConnector, {'host': 'h', 'timeout': 0}, 'timeout'),
    (SMTPConnector, {'host': 'h', 'tls_ca_file': '/no/such/ca.pem'}, 'tls_ca_file'),
    (SMTPConnector, {'host': 'h', 'ping_address': 'not an address'}, 'ping_address'),
    (SMTPConnector, {'host': 'h', 'pool_size': 0}, 'pool_size'),
    (IMAPConnector, {'host': 'h'}, 'username'),
    (IMAPConnector, {'host': 'h', 'username': 'u', 'get_criteria': 'UNSEEN\x00'}, 'get_criteria'),
    (IMAPConnector, {'host': 'h', 'username': 'u', 'debug_level': 9}, 'debug_level'),
])
def test_a_definition_that_cannot_work_is_refused_naming_the_field(cls, data, field):
    with pytest.raises(FieldError) as info:
        validate(cls.fields, data)
    assert info.value.field == field


def test_the_password_is_the_secret_and_never_part_of_the_config():
    config, secret = validate(SMTPConnector.fields, {'host': 'h', 'username': 'u', 'password': 'p4ss'})
    assert secret == 'p4ss' and 'p4ss' not in str(config)


def test_tls_verifies_certificates_and_names_unless_told_not_to(tmp_path):
    assert tls_context({}, 'plain') is None
    strict = tls_context({'tls_verify': True}, 'starttls')
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    loose = tls_context({'tls_verify': False}, 'ssl')
    assert loose is not None and loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname


def test_the_wire_log_leaves_out_what_is_sent_while_logging_in(caplog):
    wire = WireLog(logging.getLogger('zato.test.wire'), '<conn>')
    with caplog.at_level(logging.INFO, 'zato.test.wire'):
        wire.smtplib('send:', "'ehlo example.com\\r\\n'")
        wire.hidden = True
        wire.smtplib('send:', "'AUTH PLAIN AHVzZXIAcDRzcw==\\r\\n'")
        wire.imaplib("> b'A1 LOGIN user \"p4ss\"'")
        wire.imaplib("< b'A1 OK Logged in'")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["<conn>: send: 'ehlo example.com\\r\\n'", '<conn>: (sent while logging in: not logged)',
                     '<conn>: (sent while logging in: not logged)', "<conn>: < b'A1 OK Logged in'"]


def test_credentials_the_server_refused_are_not_tried_again_for_a_while():
    hold = AuthHold()
    hold.check('smtp', 'c')
    hold.refused('535 Authentication failed')
    with pytest.raises(ConnectorAuthError, match='535 Authentication failed .not tried again for 300s'):
        hold.check('smtp', 'c')
    hold.accepted()
    hold.check('smtp', 'c')
