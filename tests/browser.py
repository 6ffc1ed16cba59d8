"""Debian's chromium driven by Playwright (no browser download), for tests against a
running service. Skips cleanly where chromium is not installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@contextmanager
def browser_page(microphone_wav: str | None = None, **context_options) -> Iterator:
    """A fresh page in a headless chromium; downloads allowed. With `microphone_wav`,
    chromium's fake capture device plays that file as the microphone."""
    from playwright.sync_api import sync_playwright

    args = list(ARGS)
    if microphone_wav:
        args += [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone_wav}",
        ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(accept_downloads=True, **context_options)
            yield context.new_page()
        finally:
            browser.close()
