"""docs/cli.md's table of the commands over the admin API is the one they are made from."""

from __future__ import annotations

import os
import re

from tests.e2e.harness import ROOT

CLI_MD = os.path.join(ROOT, 'docs', 'cli.md')


def read_page() -> str:
    with open(CLI_MD, encoding='utf-8') as f:
        return f.read()


def test_the_table_of_admin_api_commands_is_generated_from_the_routes():
    from zato.cli.admin_commands import render_docs
    text = read_page()
    m = re.search(r'<!-- generated: python -m zato.cli.admin_commands -->\n(.*?)<!-- end generated -->', text, re.S)
    assert m is not None, 'docs/cli.md has no generated table'
    assert m.group(1) == render_docs(), 'run: python -m zato.cli.admin_commands, and paste it into docs/cli.md'
