"""What goes on the IMAP wire from a caller's folder names, criteria and UIDs, and how the answers
to UID SEARCH and UID FETCH are taken apart."""

from __future__ import annotations

import pytest

from zato.connectors.imap_proto import check_criteria, parse_fetch, parse_search, quote_mailbox, uid_set


@pytest.mark.parametrize('name, quoted', [
    ('INBOX', '"INBOX"'), ('Sent Items', '"Sent Items"'), ('a"b\\c', '"a\\"b\\\\c"'),
    ('Tom & Jerry', '"Tom &- Jerry"'),
    ('Entwürfe', '"Entw&APw-rfe"'),
    ('台北', '"&U,BTFw-"'),                    # RFC 3501 5.1.3: ~peter/mail/&U,BTFw-/&ZeVnLIqe-
    ('日本語', '"&ZeVnLIqe-"'),
])
def test_a_folder_name_is_a_quoted_string_in_modified_utf7(name, quoted):
    assert quote_mailbox(name) == quoted


@pytest.mark.parametrize('name', ['', 'INBOX\r\nA1 DELETE INBOX', 'a\x00b'])
def test_a_folder_name_that_would_end_the_command_is_refused(name):
    with pytest.raises(ValueError, match='not a folder name'):
        quote_mailbox(name)


def test_criteria_on_several_lines_are_one_line_as_in_31():
    assert check_criteria('UNSEEN\nFROM "alice@example.com"') is None


@pytest.mark.parametrize('criteria, error', [
    ('', 'expected search criteria'), ('SUBJECT "żółw"', 'printable ASCII'), ('ALL\x07', 'printable ASCII'),
    ('SUBJECT "open', 'not closed'),
])
def test_criteria_that_cannot_be_sent_are_refused(criteria, error):
    assert error in check_criteria(criteria)


def test_uids_become_a_set_and_anything_else_is_refused():
    assert uid_set(('1', 22, b'333')) == '1,22,333'
    for bad in [('1:*',), ('1 2',), ('0',), ('1\r\n',), ()]:
        with pytest.raises(ValueError):
            uid_set(bad)


def test_search_answers_are_uids_in_the_servers_order():
    assert parse_search([b'3 1 2']) == ['3', '1', '2']
    assert parse_search([b'']) == [] and parse_search([None]) == []


def test_fetch_answers_give_uid_flags_and_message_wherever_the_server_puts_uid_and_flags():
    data = [(b'1 (UID 7 FLAGS (\\Seen \\Flagged) BODY[] {5}', b'hello'), b')',
            (b'2 (BODY[] {3}', b'bye'), b' UID 9 FLAGS ())',
            b'3 (FLAGS (\\Seen))']  # an unsolicited flag change, no message
    assert parse_fetch(data) == [('7', ('\\Seen', '\\Flagged'), b'hello'), ('9', (), b'bye')]
