""".dockerignore leaves out of the image's build context everything .gitignore ignores (a local
.venv, compiled modules, caches, build artifacts) and the history, and keeps every file the Dockerfile
needs: all tracked files, since it copies the whole context.

No Docker engine runs here, so the patterns are matched the way Docker's builder matches them
(moby/patternmatcher): each pattern is anchored at the context's root, `*` and `?` stay within one
path segment, `**` spans any number of them, a pattern that matches a directory leaves out all that
is below it, and the last matching line wins, `!` lines putting paths back.
"""

from __future__ import annotations

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (already cleaned) as a regular expression over slash-separated paths."""
    out = ''
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith('**', i):
            i += 2
            if pattern.startswith('/', i):
                i += 1
            out += '.*' if i >= len(pattern) else '(.*/)?'
            continue
        if ch == '*':
            out += '[^/]*'
        elif ch == '?':
            out += '[^/]'
        elif ch == '\\' and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch in '[]':
            out += ch  # a character class, as in filepath.Match
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out)


def read_dockerignore(path: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exclusion, regex) per line, in order; comments and blank lines skipped (none: no file)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if not os.path.exists(path):
        return rules
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            keep = line.startswith('!')
            pattern = os.path.normpath(line[1:].strip() if keep else line).lstrip('/') or '.'
            rules.append((keep, compile_pattern(pattern)))
    return rules


def left_out(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Whether Docker leaves `path` (relative, slash-separated) out of the build context."""
    parts = path.split('/')
    candidates = ['/'.join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for keep, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not keep
    return excluded


def git(*args: str, stdin: str | None = None) -> list[str]:
    proc = subprocess.run(['git', '-C', ROOT, *args], input=stdin, capture_output=True, text=True, check=False)
    assert proc.returncode in (0, 1), proc.stderr  # check-ignore exits 1 when nothing is ignored
    return [line for line in proc.stdout.split('\0' if '-z' in args else '\n') if line]


def gitignore_samples() -> list[str]:
    """For each .gitignore pattern, a path at the root and one below a directory that it would cover."""
    samples = []
    with open(os.path.join(ROOT, '.gitignore'), encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(('#', '!')):
                continue
            name = line.strip('/').replace('**/', '').replace('*', 'x')
            for path in (name, f'zato/sub/{name}'):
                samples.append(f'{path}/a-file' if line.endswith('/') else path)
    return samples


RULES = read_dockerignore(os.path.join(ROOT, '.dockerignore'))


def test_the_matcher_follows_dockers_rules():
    rules = [(False, compile_pattern(p)) for p in ('*.so', '**/*.pyc', 'build', 'a/**')] + \
            [(True, compile_pattern('a/keep.txt'))]
    assert left_out(rules, 'x.so') and not left_out(rules, 'zato/x.so')  # anchored at the root
    assert left_out(rules, 'x.pyc') and left_out(rules, 'zato/cy/x.pyc')
    assert left_out(rules, 'build/lib/zato/x.py') and not left_out(rules, 'web/build/x')
    assert left_out(rules, 'a/b/c') and not left_out(rules, 'a/keep.txt')


def test_everything_gitignore_ignores_is_left_out_of_the_build_context():
    # Real leftovers of this checkout (a venv, build/, compiled modules, caches) and a sample per pattern,
    # kept only where git itself says it ignores them
    present = [path.rstrip('/') for path in git('ls-files', '-z', '--others', '--ignored', '--exclude-standard',
                                                 '--directory')]
    samples = git('check-ignore', '--no-index', '-z', '--stdin', stdin='\0'.join(gitignore_samples()) + '\0')
    assert 'zato/sub/x.so' in samples and 'build/a-file' in samples  # the samples mean something
    kept = [path for path in present + samples if not left_out(RULES, path)]
    assert kept == []


def test_the_venv_and_the_history_are_left_out():
    for path in ('.venv/bin/python', '.git/HEAD', '.git', 'zato/__pycache__/service.cpython-311.pyc',
                 'zato/cy/http1.cpython-311-x86_64-linux-gnu.so', 'ext/http1.c', 'tmp/x', 'artifacts/report.html'):
        assert left_out(RULES, path), path


def test_every_file_the_dockerfile_copies_is_kept():
    with open(os.path.join(ROOT, 'Dockerfile'), encoding='utf-8') as f:
        copies = [line.split()[1:] for line in f if line.split()[:1] in (['COPY'], ['ADD'])]
    sources = [part for args in copies for part in [a for a in args if not a.startswith('--')][:-1]]
    assert sources == ['.'], sources  # the whole context: then every tracked file must be in it
    tracked = git('ls-files', '-z')
    assert 'scripts/setup.sh' in tracked and 'ext/http1.pyx' in tracked
    assert [path for path in tracked if left_out(RULES, path)] == []
