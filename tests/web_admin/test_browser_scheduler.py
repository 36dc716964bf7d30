"""The Scheduler page in headless Chromium against a running environment: a cron job made through the
form (a bad definition first, refused next to its field with what was typed kept), listed with its
next run, executed with "Execute now" until the list shows its last run and result, then deactivated
and deleted. Every page is saved as a screenshot (tests/chromium.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chromium import screenshot
from tests.web_admin.conftest import TIMEOUT, WebAdmin, sign_in
from tests.web_admin.test_browser_channels import fill, flash, row

SERVICE = '''
from zato.server.service import Service

class Tick(Service):
    name = 'wab-sched.tick'

    def handle(self):
        pass
'''


@pytest.fixture
def signed_in(web_admin: WebAdmin, page: Any) -> Any:
    env = web_admin.env
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'wab_sched.py', 'source': SERVICE})
    env.wait_for(lambda: 'wab-sched.tick' in {s['name'] for s in env.admin.call('GET', '/zato/admin/services')},
                 timeout=TIMEOUT)
    sign_in(page, web_admin)
    page.on('dialog', lambda dialog: dialog.accept())  # the data-confirm of Delete
    return page


def test_a_cron_job_made_in_the_form_is_listed_executed_deactivated_and_deleted(web_admin, signed_in):
    wa, page = web_admin, signed_in
    page.goto(wa.url + '/scheduler')
    page.click('#create')
    fill(page, name='wab nightly', job_type='cron_style', service='wab-sched.tick', cron_definition='0 25 * * *',
         timezone='Europe/Prague', extra='customer=123')
    page.click('#save')
    assert 'hour `25`' in page.locator('#error-cron_definition').inner_text()
    assert page.input_value('#f-cron_definition') == '0 25 * * *'
    screenshot(page, 'web-admin/scheduler-form-refused')
    fill(page, cron_definition='0 2 * * *')
    page.click('#save')
    assert flash(page) == 'Created scheduler job `wab nightly`.'
    job = next(j for j in wa.env.admin.call('GET', '/zato/admin/scheduler/jobs') if j['name'] == 'wab nightly')
    assert row(page, 'wab nightly').locator('td.col-next_run').inner_text() == job['next_run']
    assert job['next_run'].endswith(('T00:00:00+00:00', 'T01:00:00+00:00'))  # 02:00 in Prague, CEST or CET

    row(page, 'wab nightly').locator('button', has_text='Execute now').click()
    assert flash(page).startswith('Execute now `wab nightly`: started, cid ')
    wa.env.wait_for(lambda: next(j for j in wa.env.admin.call('GET', '/zato/admin/scheduler/jobs')
                                 if j['name'] == 'wab nightly')['last_result'] == 'ok', timeout=TIMEOUT)
    page.goto(wa.url + '/scheduler')
    assert row(page, 'wab nightly').locator('td.col-last_result').inner_text() == 'ok'
    assert row(page, 'wab nightly').locator('td.col-last_run_start').inner_text() != ''
    screenshot(page, 'web-admin/scheduler-list')

    row(page, 'wab nightly').locator('button', has_text='Deactivate').click()
    assert flash(page) == 'Deactivated scheduler job `wab nightly`.'
    assert row(page, 'wab nightly').locator('td.col-next_run').inner_text() == ''
    row(page, 'wab nightly').locator('button', has_text='Delete').click()
    assert flash(page) == 'Deleted scheduler job `wab nightly`.'
    assert row(page, 'wab nightly').count() == 0
