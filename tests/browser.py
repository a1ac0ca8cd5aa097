"""A real headless Chromium for the playground's tests, driven by Playwright.

The browser is Debian's `chromium-headless-shell` (or `chromium`), which `make install-tools`
installs; Playwright cannot download its own build here, so it is given the executable path.
`CHROMIUM` overrides the path. Screenshots go to `test-artifacts/playground/` (git-ignored), or
under `TEST_ARTIFACTS_DIR`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

# No sandbox: CI runs as root, where Chromium's sandbox refuses to start. The rest keeps the
# browser from calling out (there is no network beyond loopback) and from using a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]


def chromium_path() -> str:
    override = os.environ.get("CHROMIUM")
    if override:
        return override
    for name in ("chromium-headless-shell", "chromium"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "No Chromium found: `make install-tools` installs Debian's chromium-headless-shell "
        "(or set CHROMIUM to a Chromium binary)."
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir() -> Path:
    root = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / "test-artifacts")
    folder = root / "playground"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page; `allow` a line a test expects."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def watch_console(page: Page, console: Console | None = None) -> Console:
    """Record `page`'s console errors (into `console`, when given)."""
    console = console if console is not None else Console()
    page.on(
        "console",
        lambda message: console.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    return console
