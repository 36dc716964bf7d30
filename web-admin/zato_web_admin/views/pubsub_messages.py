"""Pub/sub messages: a topic's page (its last publication, how many messages it holds, its
subscriptions, "Publish a message" and "Clear topic") and a subscription's queue (a page at a time in
delivery order, searched by a part of the data), each queued message's page with all of its fields,
deleting one message and clearing the queue.

What the pages show is read from the shared ODB (zato_web_admin.pubsub_browse), so browsing needs no
server. Every change goes through the admin API, so the server validates it and keeps each topic's
depth right:

* `POST /zato/admin/pubsub/topics/{id}/publish` with `{"data": str, "priority": 1-9, "mime_type": str,
  "correl_id": str}` and `"expiration"` (ms) when given: answers `{"msg_id": "zpsm..."}`; a refusal
  (4xx, or 503 for an inactive topic or one at its max depth) `{"details": "..."}`, naming an input
  in backticks (shown next to that field).
* `POST /zato/admin/pubsub/subscriptions/{id}/clear`: answers `{"id": id, "cleared": n}`, the entries
  removed (`deleted` is read as well; any other JSON is taken as done, without a count).
* `DELETE /zato/admin/pubsub/subscriptions/{id}/messages/{msg_id}`: answers `{"id", "msg_id",
  "deleted": true}`; any 2xx is deleted, except `"deleted"` false, which (as a 404 with its details)
  says the message was no longer queued.

"Clear topic" clears the queue of each of the topic's subscriptions, one call each; messages that no
queue holds (published while the topic had no subscription, `on_no_subs_pub` accept) stay until they
expire (docs/pubsub.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from zato.admin_client import AdminCallError
from zato_web_admin import pubsub_browse as browse
from zato_web_admin.http import HTTPError, Request, Response, Route
from zato_web_admin.listing import Page
from zato_web_admin.resources import Field, audit, field_of_message
from zato_web_admin.views.pubsub import SUBSCRIPTIONS, TOPICS

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

API = '/zato/admin/pubsub'

# A msg_id as the server makes them (zpsm and hex); anything else is no message of ours
MSG_ID = re.compile(r'^[A-Za-z0-9._-]{1,80}$')

PUBLISH_FIELDS = (
    Field('data', 'Data', 'textarea', 'Sent as a string', required=True),
    Field('priority', 'Priority', 'number', '1 to 9, 9 delivered first', default=5),
    Field('expiration', 'Expiration (ms)', 'number', 'Milliseconds until it expires; empty: the server’s default'),
    Field('mime_type', 'MIME type', default='text/plain'),
    Field('correl_id', 'Correlation ID'),
)


def _id(obj_id: str) -> int:
    if not obj_id.isdigit():
        raise HTTPError(404)
    return int(obj_id)


def _topic(app: WebAdmin, obj_id: str) -> Any:
    with app.db() as db:
        row = browse.topic(db, app.config.cluster_id, _id(obj_id))
        if row is None:
            raise HTTPError(404, 'No such pub/sub topic')
        db.expunge(row)
    return row


def _subscription(app: WebAdmin, obj_id: str) -> browse.Subscription:
    with app.db() as db:
        sub = browse.subscription(db, app.config.cluster_id, _id(obj_id))
    if sub is None:
        raise HTTPError(404, 'No such pub/sub subscription')
    return sub


def _details(e: AdminCallError) -> str:
    return e.details if isinstance(e.details, str) else str(e.details)


# ################################################################################################ a topic

def render_topic(app: WebAdmin, request: Request, obj_id: str, values: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, status: int = 200) -> Response:
    row = _topic(app, obj_id)
    with app.db() as db:
        subs = browse.subscriptions_of_topic(db, app.config.cluster_id, row.id)
    return app.render(request, 'pubsub_topic.html', status, res=TOPICS, topic=row, subs=subs,
                      last_pub_time=browse.iso(row.last_pub_time), fields=PUBLISH_FIELDS, errors=errors or {},
                      values=values or {f.name: f.to_form(f.default) for f in PUBLISH_FIELDS}, options={})


def topic_page(app: WebAdmin, request: Request, obj_id: str) -> Response:
    return render_topic(app, request, obj_id)


def publish_payload(form: dict[str, str]) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """What the user typed, the admin API's input made of it, and the fields that could not be read."""
    values, payload, errors = {}, {}, {}
    for f in PUBLISH_FIELDS:
        values[f.name] = text = form.get(f.name, '')
        try:
            value = f.from_form(text)
        except ValueError as e:
            errors[f.name] = str(e)
            continue
        if value is not None:
            payload[f.name] = value
    priority = payload.get('priority')
    if 'priority' not in errors and (priority is None or not 1 <= priority <= 9):
        errors['priority'] = 'expected a number from 1 to 9'
    if payload.get('expiration') is not None and payload['expiration'] < 0:
        errors['expiration'] = 'expected 0 or more milliseconds'
    return values, payload, errors


def publish(app: WebAdmin, request: Request, obj_id: str) -> Response:
    row = _topic(app, obj_id)
    values, payload, errors = publish_payload(request.form)
    if errors:
        return render_topic(app, request, obj_id, values, errors, 400)
    try:
        out = app.config.admin.call('POST', f'{API}/topics/{row.id}/publish', payload)
    except AdminCallError as e:
        # 503: the topic is inactive or at its max depth, which the user is to read, not a failure of ours
        if e.status >= 500 and e.status != 503:
            raise
        message = _details(e)
        name = field_of_message(message, PUBLISH_FIELDS)
        return render_topic(app, request, obj_id, values, {name or '__all__': message}, e.status)
    msg_id = str(out.get('msg_id', '')) if isinstance(out, dict) else ''
    audit(app, request, TOPICS, f'{TOPICS.slug}.publish', row.name,
          {'msg_id': msg_id, **{k: v for k, v in payload.items() if k != 'data'}})
    return app.done(request, f'{TOPICS.base}/{row.id}', f'Published message {msg_id} to `{row.name}`.')


def _clear_queue(app: WebAdmin, sub_id: int) -> int | None:
    """Clears the queue of `sub_id` through the admin API: how many entries went, None if not said."""
    out = app.config.admin.call('POST', f'{API}/subscriptions/{sub_id}/clear')
    if not isinstance(out, dict):
        return None
    count = out.get('cleared', out.get('deleted'))
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def clear_topic(app: WebAdmin, request: Request, obj_id: str) -> Response:
    row = _topic(app, obj_id)
    back = f'{TOPICS.base}/{row.id}'
    with app.db() as db:
        subs = browse.subscriptions_of_topic(db, app.config.cluster_id, row.id)
    if not subs:
        return app.done(request, back, f'Topic `{row.name}` has no subscription; no queue to clear.', 'error')
    deleted = 0
    for sub in subs:
        try:
            deleted += _clear_queue(app, sub['id']) or 0
        except AdminCallError as e:
            if e.status >= 500:
                raise
            return app.done(request, back, f'Clear `{row.name}`: the queue of `{sub["endpoint"]}`: {_details(e)}',
                            'error')
    audit(app, request, TOPICS, f'{TOPICS.slug}.clear', row.name, {'subscriptions': len(subs), 'deleted': deleted})
    return app.done(request, back, f'Cleared topic `{row.name}`: the queues of {len(subs)} subscription(s), '
                                   f'{deleted} message(s).')


# ################################################################################################ a queue

def _sub_name(sub: browse.Subscription) -> str:
    return f'{sub.endpoint} → {sub.topic}'


def queue_page(app: WebAdmin, request: Request, obj_id: str) -> Response:
    sub = _subscription(app, obj_id)
    with app.db() as db:
        messages, page = browse.queue_page(db, sub.id, Page.from_request(request))
    return app.render(request, 'pubsub_queue.html', res=SUBSCRIPTIONS, sub=sub, messages=messages, page=page)


def _msg_id(msg_id: str) -> str:
    if not MSG_ID.match(msg_id):
        raise HTTPError(404, 'No such message')
    return msg_id


def message_page(app: WebAdmin, request: Request, obj_id: str, msg_id: str) -> Response:
    sub = _subscription(app, obj_id)
    with app.db() as db:
        message = browse.queued_message(db, sub.id, _msg_id(msg_id))
    if message is None:
        raise HTTPError(404, 'The queue holds no such message (delivered, deleted or expired)')
    return app.render(request, 'pubsub_message.html', res=SUBSCRIPTIONS, sub=sub, m=message)


def delete_message(app: WebAdmin, request: Request, obj_id: str, msg_id: str) -> Response:
    sub = _subscription(app, obj_id)
    msg_id = _msg_id(msg_id)
    back = f'{SUBSCRIPTIONS.base}/{sub.id}/messages'
    try:
        out = app.config.admin.call('DELETE', f'{API}/subscriptions/{sub.id}/messages/{msg_id}')
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, back, f'Delete message {msg_id}: {_details(e)}', 'error')
    if isinstance(out, dict) and out.get('deleted') in (0, False):
        return app.done(request, back, f'Message {msg_id} was no longer queued.', 'error')
    audit(app, request, SUBSCRIPTIONS, f'{SUBSCRIPTIONS.slug}.message.delete', _sub_name(sub), {'msg_id': msg_id})
    return app.done(request, back, f'Deleted message {msg_id} from the queue of `{_sub_name(sub)}`.')


def clear_queue(app: WebAdmin, request: Request, obj_id: str) -> Response:
    sub = _subscription(app, obj_id)
    back = f'{SUBSCRIPTIONS.base}/{sub.id}/messages'
    try:
        deleted = _clear_queue(app, sub.id)
    except AdminCallError as e:
        if e.status >= 500:
            raise
        return app.done(request, back, f'Clear the queue of `{_sub_name(sub)}`: {_details(e)}', 'error')
    audit(app, request, SUBSCRIPTIONS, f'{SUBSCRIPTIONS.slug}.clear', _sub_name(sub), {'deleted': deleted})
    count = '' if deleted is None else f': {deleted} message(s)'
    return app.done(request, back, f'Cleared the queue of `{_sub_name(sub)}`{count}.')


# After views.pubsub's routes, so that /pubsub/topics/new stays the create form
ROUTES: list[Route] = [
    ('GET', f'{TOPICS.base}/{{obj_id}}', topic_page, False),
    ('POST', f'{TOPICS.base}/{{obj_id}}/publish', publish, False),
    ('POST', f'{TOPICS.base}/{{obj_id}}/clear', clear_topic, False),
    ('GET', f'{SUBSCRIPTIONS.base}/{{obj_id}}/messages', queue_page, False),
    ('GET', f'{SUBSCRIPTIONS.base}/{{obj_id}}/messages/{{msg_id}}', message_page, False),
    ('POST', f'{SUBSCRIPTIONS.base}/{{obj_id}}/messages/{{msg_id}}/delete', delete_message, False),
    ('POST', f'{SUBSCRIPTIONS.base}/{{obj_id}}/clear', clear_queue, False),
]
