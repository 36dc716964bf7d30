"""The commands the README, docs/getting-started.md and docs/cli.md show run as written, in a fresh
shell, after the README's first command (`scripts/quickstart.sh`), and print what the pages say.

The pages run in one clone (tests/e2e/harness.py Clone), one after the other, getting-started
last as it stops the quickstart. Every ```bash block runs, in order, each command in a shell of its
own (no variable or directory carries over from one to the next, as between copy-pastes), unless
`<!-- docs-shell: skip (why) -->` is right before it. `# ...` lines right after a command are its output: compared as JSON when they
are JSON, otherwise as text where `...` stands for anything; a note after three spaces, `(HTTP 400)`,
is not part of it. A ```python block is a file the reader saves: `# docs-example: FILE` in the
current directory, `# ~/path/file.py` there. A command is tried again for a few seconds while it
fails, as a reader takes a few seconds between two (the docs say a deploy takes a second or two)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests.e2e.harness import ROOT, Clone

PAGES = ('README.md', 'docs/cli.md', 'docs/getting-started.md')

BLOCK = re.compile(r'(?:<!-- docs-shell: skip \((?P<skip>[^)]+)\) -->\s*\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```',
                   re.S | re.M)

# How long a command may keep failing before the page is wrong
PATIENCE = 15.0


def steps_of(body: str) -> list[tuple[str, str | None]]:
    """A bash block's commands, each with the output the page shows for it (None if it shows none)."""
    steps: list[tuple[str, str | None]] = []
    lines = body.splitlines()
    i, after_command = 0, False
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            after_command = False
        elif line.lstrip().startswith('#'):
            if after_command:
                command, shown = steps[-1]
                text = line.lstrip()[1:].strip()
                steps[-1] = (command, text if shown is None else shown + '\n' + text)
        else:
            command = line
            while command.endswith('\\') and i < len(lines):
                command += '\n' + lines[i]
                i += 1
            steps.append((command, None))
            after_command = True
    return steps


def same_output(shown: str, printed: str) -> bool:
    shown = re.sub(r' {3,}\([^()]*\)$', '', shown.strip())
    printed = printed.strip()
    try:
        printed = json.dumps(json.loads(printed), separators=(',', ':'), ensure_ascii=False)
    except ValueError:
        pass
    if '...' not in shown:
        try:
            return json.loads(shown) == json.loads(printed)
        except ValueError:
            pass
    shown, printed = re.sub(r'\s+', '', shown), re.sub(r'\s+', '', printed)
    return re.fullmatch('.*'.join(re.escape(part) for part in shown.split('...')), printed, re.S) is not None


def save_file(clone: Clone, code: str) -> None:
    first = code.splitlines()[0] if code.strip() else ''
    m = re.fullmatch(r'# docs-example: (\S+)', first) or re.fullmatch(r'# (~?/\S+\.py)', first)
    if m is None:
        return  # a snippet, not a file
    name = m.group(1)
    path = os.path.join(clone.home, name[2:]) if name.startswith('~/') else (
        name if name.startswith('/') else os.path.join(clone.root, name))
    assert path.startswith(clone.home) or path.startswith(clone.root), path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(code)


def run_step(clone: Clone, command: str, shown: str | None, page: str) -> None:
    command = clone.local(command)
    shown = clone.local(shown) if shown is not None else None
    deadline = time.monotonic() + PATIENCE
    while True:
        proc = clone.sh(command)
        if proc.returncode == 0 and (shown is None or same_output(shown, proc.stdout)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f'{page}: `{command}` exited {proc.returncode}\n--- the page shows:\n{shown}\n'
                                 f'--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}')
        time.sleep(0.5)


def test_the_output_check_reads_json_wildcards_and_notes():
    assert same_output('{"pong": "zato"}', '{\n  "pong": "zato"\n}\n')
    assert same_output('{"id": ..., "deleted": true}', '{"id": 12, "deleted": true}')
    assert same_output('{"cid":"...","details":"Bad"}   (HTTP 400)', '{"cid":"abc","details":"Bad"}')
    assert not same_output('{"pong": "zato"}', '{"pong": "other"}')
    assert not same_output('{"id": ..., "deleted": true}', '{"id": 12, "deleted": false}')


def test_a_block_is_split_into_commands_and_the_output_each_shows():
    body = 'zato a \\\n  --b c   # a comment\n# {"x": 1}\n\ncurl d\n\n# not an output\ncurl e\n# one\n# two\n'
    assert steps_of(body) == [('zato a \\\n  --b c   # a comment', '{"x": 1}'), ('curl d', None),
                              ('curl e', 'one\ntwo')]


@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    """One clone for the pages, in PAGES' order (getting-started, which stops the quickstart, last),
    after the README's first command, as its reader runs it."""
    made = Clone(str(tmp_path_factory.mktemp('docs-shell')))
    try:
        first = made.sh('scripts/quickstart.sh')
        assert first.returncode == 0, first.stdout + first.stderr
        yield made
    finally:
        made.stop_all()


@pytest.mark.parametrize('page', PAGES)
def test_every_command_of_the_page_runs_in_a_fresh_shell_after_the_quickstart(clone, page):
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
        text = f.read()
    ran = 0
    for m in BLOCK.finditer(text):
        if m.group('lang') == 'python':
            save_file(clone, m.group('body'))
        elif m.group('lang') == 'bash' and not m.group('skip'):
            for command, shown in steps_of(m.group('body')):
                run_step(clone, command, shown, page)
                ran += 1
    assert ran, f'{page} has no command to run'
