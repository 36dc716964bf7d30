"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (its own
browser download is never used). `launch()` skips the test when either is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = '/usr/bin/chromium'


@contextmanager
def launch(timeout: float = 30.0) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f'{CHROMIUM} is missing (Debian package chromium; scripts/peers.sh installs it)')
    api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install -e .[test])')
    with api.sync_playwright() as p:
        args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync']
        if os.geteuid() == 0:
            args.append('--no-sandbox')
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=timeout * 1000)
        try:
            yield browser
        finally:
            browser.close()


ARTIFACTS = os.environ.get('ZATO_TEST_ARTIFACTS') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'artifacts')


def screenshot(page: Any, name: str, timeout: float = 15.0) -> str:
    """The page, whole, as ARTIFACTS/<name>.png (ZATO_TEST_ARTIFACTS, or artifacts/ in the checkout)."""
    path = os.path.join(ARTIFACTS, f'{name}.png')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    page.screenshot(path=path, full_page=True, timeout=timeout * 1000)
    return path
