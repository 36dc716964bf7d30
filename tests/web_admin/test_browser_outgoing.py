"""Outgoing connections in the web-admin, in Chromium, against a real peer (SecantusDB, MongoDB's wire
protocol): the form built from the kind's fields, a field the server refuses shown next to it with
what was typed kept, Ping answering with the round trip and then with the error once the peer is
gone, Change password, deactivate and delete — each reaching the server's workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chromium import screenshot
from tests.integration.peers import MongoPeer
from tests.web_admin.conftest import sign_in


@pytest.fixture
def mongo() -> Iterator[MongoPeer]:
    peer = MongoPeer().start()
    try:
        yield peer
    finally:
        peer.stop()


def row(page, name: str):
    return page.locator(f'tr[data-name="{name}"]')


def test_an_outgoing_mongodb_connection_is_created_pinged_and_deleted_from_the_browser(web_admin, page, mongo):
    wa = web_admin
    sign_in(page, wa)
    page.click('nav.menu >> text=MongoDB')
    assert page.locator('h1').inner_text() == 'Outgoing MongoDB'
    page.click('#create')

    # A server list the server refuses: the error is next to the field, the rest of the input kept
    page.fill('#f-name', 'Customers DB')
    page.fill('#f-server_list', 'localhost:99999')
    page.fill('#f-server_select_timeout', '2')
    page.click('#save')
    assert 'server_list' in page.locator('#error-server_list').inner_text()
    assert page.input_value('#f-name') == 'Customers DB' and page.input_value('#f-server_select_timeout') == '2'
    screenshot(page, 'web-admin/outgoing-form-refused')

    page.fill('#f-server_list', f'127.0.0.1:{mongo.port}')
    page.click('#save')
    assert 'Created outgoing MongoDB connection `Customers DB`' in page.locator('.flash').inner_text()
    assert row(page, 'Customers DB').count() == 1

    row(page, 'Customers DB').locator('button', has_text='Ping').click()
    flash = page.locator('.flash').inner_text()
    assert 'Ping `Customers DB`: OK in' in flash and ' ms' in flash, flash
    screenshot(page, 'web-admin/outgoing-ping-ok')

    # The same connection, as the server sees it
    listed = wa.env.admin.call('GET', '/zato/admin/outconns/mongodb')
    assert [(c['name'], c['server_list'], c['server_select_timeout']) for c in listed] == \
        [('Customers DB', f'127.0.0.1:{mongo.port}', 2)]

    # The peer goes away: Ping says why
    mongo.kill()
    row(page, 'Customers DB').locator('button', has_text='Ping').click()
    assert page.locator('.flash.error').inner_text().startswith('Ping `Customers DB`: ')
    screenshot(page, 'web-admin/outgoing-ping-error')

    # Change password: sent to the server, never shown
    row(page, 'Customers DB').locator('a', has_text='Change password').click()
    page.fill('input[name=password]', 'new-secret-123')
    page.fill('input[name=password_again]', 'new-secret-123')
    page.click('main button[type=submit]')
    assert 'Changed the password' in page.locator('.flash').inner_text()
    assert wa.env.admin.call('GET', '/zato/admin/outconns/mongodb')[0]['has_secret'] is True
    assert 'new-secret-123' not in page.content()

    # Deactivate, then delete (a confirmation first)
    row(page, 'Customers DB').locator('button', has_text='Deactivate').click()
    assert wa.env.admin.call('GET', '/zato/admin/outconns/mongodb')[0]['is_active'] is False
    page.once('dialog', lambda dialog: dialog.accept())
    row(page, 'Customers DB').locator('button', has_text='Delete').click()
    assert 'Deleted' in page.locator('.flash').inner_text()
    assert wa.env.admin.call('GET', '/zato/admin/outconns/mongodb') == []

    audit = wa.session().get(wa.url + '/audit?q=mongodb', timeout=15).text
    for action in ('outgoing/mongodb.create', 'outgoing/mongodb.change-password', 'outgoing/mongodb.deactivate',
                   'outgoing/mongodb.delete'):
        assert action in audit, action
    assert 'new-secret-123' not in audit
