"""The built-in caches' pages called alone, over a real ODB, with an admin API that answers from a dict:
the entries page (search, values shown as JSON and cut, bytes said so, every key escaped), deleting
one entry (its key sent in the body, whatever it holds), the "Clear" button, and the cache field of
the REST channel form."""

from __future__ import annotations

from typing import Any

from zato.odb.models import CacheBuiltin
from zato_web_admin import resources
from zato_web_admin.views import caches
from zato_web_admin.views.resources import REST_CHANNELS

from tests.web_admin.views.standalone import request, signed_in, text

CACHE = {'id': 7, 'name': 'orders', 'is_active': True, 'is_default': False, 'max_size': 100,
         'max_item_size': 1000, 'extend_expiry_on_get': True, 'extend_expiry_on_set': True,
         'sync_method': 'in-background', 'entries': 2}


class FakeAdmin:
    """Answers the admin calls the pages make, and remembers them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.entries = [
            {'key': 'order:1', 'value': {'total': 10}, 'is_bytes': False, 'expiry': 60.0, 'hits': 3, 'size': 12},
            {'key': '<script>k</script>', 'value': 'AAE=', 'is_bytes': True, 'expiry': 0.0, 'hits': 0, 'size': 2},
            {'key': 'big', 'value': 'x' * 1000, 'is_bytes': False, 'expiry': 0.0, 'hits': 0, 'size': 1002},
        ]

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        self.calls.append((method, path, payload))
        if path == '/zato/admin/caches/builtin/7':
            return CACHE
        if path.startswith('/zato/admin/caches/builtin/7/entries'):
            query = path.split('query=', 1)[1] if 'query=' in path else ''
            return [e for e in self.entries if query in e['key']]
        return {}


def test_the_entries_page_shows_each_entry_escaped_and_cut_and_searches_by_key(app):
    app.config.admin = FakeAdmin()
    current = signed_in(app)
    page = text(caches.entries(app, request(current=current), obj_id='7'))
    assert '<h1>Entries of cache orders</h1>' in page
    assert '<code>order:1</code>' in page and '{&#34;total&#34;: 10}' in page
    assert '<script>k</script>' not in page and '&lt;script&gt;k&lt;/script&gt;' in page
    assert 'bytes, base64' in page and '&#34;' + 'x' * 299 + '…' in page and 'x' * 300 not in page
    page = text(caches.entries(app, request(path='/caches/builtin/7/entries', query='query=order', current=current),
                               obj_id='7'))
    assert 'order:1' in page and 'big' not in page


def test_deleting_an_entry_sends_its_key_in_the_body(app):
    admin = app.config.admin = FakeAdmin()
    current = signed_in(app)
    response = caches.delete_entry(app, request('POST', '/caches/builtin/7/entries/delete',
                                                {'key': 'a/b?c=d&e'}, current=current), obj_id='7')
    assert response.status == 303
    assert ('POST', '/zato/admin/caches/builtin/7/entry/delete', {'key': 'a/b?c=d&e'}) in admin.calls


def test_the_clear_button_posts_to_the_admin_apis_clear(app):
    admin = app.config.admin = FakeAdmin()
    routes = {(m, p): view for m, p, view, _ in caches.ROUTES}
    clear = routes['POST', '/caches/builtin/{obj_id}/clear']
    response = clear(app, request('POST', '/caches/builtin/7/clear', {}, current=signed_in(app)), obj_id='7')
    assert response.status == 303
    assert ('POST', '/zato/admin/caches/builtin/7/clear', None) in admin.calls


def test_the_rest_channel_form_offers_the_clusters_caches(app):
    with app.db() as db:
        db.add(CacheBuiltin(cluster_id=app.config.cluster_id, name='responses', version=1, opaque={}))
        db.commit()
    page = text(resources.new(app, request(current=signed_in(app)), REST_CHANNELS))
    assert '<option value="responses"' in page and 'name="cache_expiry"' in page
