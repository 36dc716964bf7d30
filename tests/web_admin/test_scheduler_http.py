"""The Scheduler page over HTTP, against a running environment: a job created with the form is listed
with its next run, "Execute now" runs it and the list shows the last run and its result, an edit and a
deactivation reach the server, a bad cron definition is refused next to its field, and a delete."""

from __future__ import annotations

import re

from tests.web_admin.conftest import TIMEOUT
from tests.web_admin.test_services_http import deploy, post, text_of

MODULE = '''
from zato.server.service import Service


class Tick(Service):
    name = 'wa-sched.tick'

    def handle(self):
        if 'fail' in self.request.raw_request:
            raise ValueError('failed on purpose')
'''

FORM = {'name': 'wa-hourly', 'is_active': 'on', 'job_type': 'interval_based', 'service': 'wa-sched.tick',
        'start_date': '2030-01-01T00:00:00Z', 'weeks': '0', 'days': '0', 'hours': '1', 'minutes': '0', 'seconds': '0',
        'repeats': '', 'cron_definition': '', 'timezone': 'UTC', 'extra': 'a=1\r\nb=2', 'misfire': 'fire_once'}


def job_named(wa, name: str) -> dict:
    return next(j for j in wa.env.admin.call('GET', '/zato/admin/scheduler/jobs') if j['name'] == name)


def row_of(html: str, name: str) -> str:
    m = re.search(rf'<tr data-name="{re.escape(name)}">(.*?)</tr>', html, re.S)
    assert m, html[:2000]
    return text_of(m.group(1))


def test_a_job_is_created_listed_executed_edited_deactivated_and_deleted_from_the_page(web_admin):
    wa = web_admin
    deploy(wa, 'wa_sched.py', MODULE)
    s = wa.session()
    page = s.get(wa.url + '/scheduler/new', timeout=TIMEOUT).text
    assert '<option value="wa-sched.tick"' in page and 'name="cron_definition"' in page

    r = post(s, wa.url + '/scheduler/new', FORM)
    assert r.status_code == 303, r.text[:2000]
    job = job_named(wa, 'wa-hourly')
    assert (job['next_run'], job['extra'], job['hours']) == ('2030-01-01T00:00:00+00:00', 'a=1\nb=2', 1)
    listed = row_of(s.get(wa.url + '/scheduler', timeout=TIMEOUT).text, 'wa-hourly')
    assert 'interval_based wa-sched.tick 2030-01-01T00:00:00+00:00' in listed

    r = post(s, wa.url + f'/scheduler/{job["id"]}/execute', {})
    assert r.status_code == 303
    assert 'Execute now `wa-hourly`: started, cid' in text_of(s.get(wa.url + '/scheduler', timeout=TIMEOUT).text)
    wa.env.wait_for(lambda: job_named(wa, 'wa-hourly')['last_result'] == 'ok', timeout=TIMEOUT)
    listed = row_of(s.get(wa.url + '/scheduler', timeout=TIMEOUT).text, 'wa-hourly')
    assert job_named(wa, 'wa-hourly')['last_run_start'] in listed and ' ok 1' not in listed and ' ok ' in listed

    r = post(s, wa.url + f'/scheduler/{job["id"]}/edit', {**FORM, 'hours': '0', 'minutes': '30'})
    assert r.status_code == 303, r.text[:2000]
    assert job_named(wa, 'wa-hourly')['minutes'] == 30

    r = post(s, wa.url + f'/scheduler/{job["id"]}/toggle', {})
    assert r.status_code == 303
    edited = job_named(wa, 'wa-hourly')
    assert edited['is_active'] is False and edited['next_run'] is None

    r = post(s, wa.url + f'/scheduler/{job["id"]}/delete', {})
    assert r.status_code == 303
    assert 'wa-hourly' not in [j['name'] for j in wa.env.admin.call('GET', '/zato/admin/scheduler/jobs')]


def test_a_bad_cron_definition_is_refused_next_to_its_field_and_a_failed_run_shows_error(web_admin):
    wa = web_admin
    deploy(wa, 'wa_sched.py', MODULE)
    s = wa.session()
    form = {**FORM, 'name': 'wa-cron', 'job_type': 'cron_style', 'cron_definition': '61 * * * *'}
    r = post(s, wa.url + '/scheduler/new', form)
    assert r.status_code == 400
    assert re.search(r'id="error-cron_definition">[^<]*minute `61`', r.text), r.text[:3000]
    assert 'value="61 * * * *"' in r.text

    r = post(s, wa.url + '/scheduler/new', {**FORM, 'name': 'wa-failing', 'extra': 'fail=1'})
    assert r.status_code == 303
    job = job_named(wa, 'wa-failing')
    post(s, wa.url + f'/scheduler/{job["id"]}/execute', {})
    wa.env.wait_for(lambda: job_named(wa, 'wa-failing')['last_result'] == 'error', timeout=TIMEOUT)
    assert ' error ' in row_of(s.get(wa.url + '/scheduler', timeout=TIMEOUT).text, 'wa-failing') + ' '
