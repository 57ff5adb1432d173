"""Open a local page in headless Chromium (Debian's ``chromium``) and see what a person would.

:func:`open_page` loads a file:// page with every host name resolving to nothing (no request can
leave the machine), lets its scripts run (virtual time), and returns the DOM after them, the
console messages the page printed, and the URLs the page asked the network for (read from
Chromium's NetLog; the browser's own background requests, which have no page origin, are left
out). :func:`screenshot` writes a PNG of the page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NAMES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",  # the suite runs as root (CI too); Chromium refuses its sandbox there
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # whatever is asked for, no name resolves: nothing leaves the machine
    "--virtual-time-budget=20000",  # run the page's scripts and timers to the end before dumping or shooting
)
_CONSOLE = re.compile(r":CONSOLE[:(\d)]*\]? ?(.*)$")


def find() -> str | None:
    """The Chromium executable on PATH (scripts/bootstrap.sh installs Debian's package), or None."""
    return next((path for path in map(shutil.which, NAMES) if path), None)


@dataclass
class Visit:
    dom: str
    console: list[str]
    requests: list[str]


def page_requests(netlog: Path) -> list[str]:
    """URLs a page asked for: the NetLog's URL_REQUEST_START_JOB events with a page as initiator."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [event.get("params") or {} for event in log["events"] if event["type"] == start]
    return [params["url"] for params in starts if "url" in params and params.get("initiator") != "not an origin"]


def open_page(page: Path, workdir: Path, *, timeout: int = 180) -> Visit:
    chromium = find()
    netlog = workdir / "netlog.json"
    completed = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={netlog}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    console = [match.group(1) for line in completed.stderr.splitlines() if (match := _CONSOLE.search(line))]
    return Visit(completed.stdout, console, page_requests(netlog))


def screenshot(page: Path, png: Path, workdir: Path, *, width: int = 1060, height: int = 2600, timeout: int = 180) -> None:
    subprocess.run(
        [find(), *FLAGS, f"--user-data-dir={workdir / 'profile-shot'}", f"--window-size={width},{height}",
         f"--screenshot={png.resolve()}", page.resolve().as_uri()],
        capture_output=True, timeout=timeout, check=True,
    )  # fmt: skip
