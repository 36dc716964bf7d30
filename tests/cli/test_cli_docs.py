"""docs/cli.md says every command and option the `zato` parser has, and its table of the commands
over the admin API is the one they are made from."""

from __future__ import annotations

import argparse
import os
import re

from tests.e2e.harness import ROOT
from zato.cli.main import build_parser

CLI_MD = os.path.join(ROOT, 'docs', 'cli.md')


def read_page() -> str:
    with open(CLI_MD, encoding='utf-8') as f:
        return f.read()


def walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(words, the options) of every command and group, `zato` first."""
    options = [s for a in parser._actions for s in a.option_strings if s not in ('-h', '--help')]
    yield words, options
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*words, name))


def test_the_page_names_every_command_and_option():
    text = read_page()
    missing = []
    for words, options in walk(build_parser()):
        if words and f'zato {" ".join(words)}' not in text:
            missing.append(f'zato {" ".join(words)}')
        missing += [f'zato {" ".join(words)} {option}' for option in options
                    if not re.search(rf'(?<![\w-]){re.escape(option)}(?![\w-])', text)]
    assert not missing, f'docs/cli.md does not mention: {missing}'


def test_the_table_of_admin_api_commands_is_generated_from_the_routes():
    from zato.cli.admin_commands import render_docs
    text = read_page()
    m = re.search(r'<!-- generated: python -m zato.cli.admin_commands -->\n(.*?)<!-- end generated -->', text, re.S)
    assert m is not None, 'docs/cli.md has no generated table'
    assert m.group(1) == render_docs(), 'run: python -m zato.cli.admin_commands, and paste it into docs/cli.md'
