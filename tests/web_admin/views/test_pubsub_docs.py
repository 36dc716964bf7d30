"""docs/pubsub.md's "Web-admin" section names each pub/sub page by its method and path: each is a
route of the web-admin, and each page of zato_web_admin.views.pubsub_messages is in the section."""

from __future__ import annotations

import os
import re

from tests.e2e.harness import ROOT
from zato_web_admin.views import all_routes, pubsub_messages


def documented() -> set[tuple[str, str]]:
    with open(os.path.join(ROOT, 'docs', 'pubsub.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('\n## Web-admin\n', 1)[1].split('\n## ', 1)[0]
    return set(re.findall(r'^\| `(GET|POST) (/pubsub/[^`]+)` \|', section, re.MULTILINE))


def test_every_page_the_docs_name_is_routed_and_every_message_page_is_named():
    pages = documented()
    assert len(pages) >= 9
    routed = {(method, pattern.replace('{obj_id}', '{id}')) for method, pattern, *_ in all_routes()}
    assert pages <= routed, pages - routed
    ours = {(method, pattern.replace('{obj_id}', '{id}')) for method, pattern, *_ in pubsub_messages.ROUTES}
    assert ours <= pages, ours - pages
