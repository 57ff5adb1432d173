"""The local AWS emulator: a moto server on localhost, started by us or kept from an earlier run.

A run started with ``--keep-running`` records its server in ``.local-aws/server.json``; every
later ``./deploy.sh --local`` finds it there and reuses it (same endpoint, same stack and data),
whether or not it says ``--keep-running`` again, until ``./deploy.sh --local --stop``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..config import REPO_ROOT
from ..tools import BuildError

STATE_DIR = REPO_ROOT / ".local-aws"
# The one region and account of everything offline (the emulator, the runner, the sandbox, the tests):
# moto's default account, so the ARNs moto hands out and the ones built here agree.
REGION = "us-east-1"
ACCOUNT = "123456789012"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def arn(service: str, resource: str) -> str:
    """An ARN in the offline region and account: ``arn("lambda", "function:Fn")``."""
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


class Emulator:
    """A moto server on localhost; ``kept`` when it outlives the run that started it."""

    def __init__(self, state_dir: Path = STATE_DIR) -> None:
        self.state_file = state_dir / "server.json"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.reused = False

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"  # 'localhost', not 127.0.0.1: CloudFormation's S3 template URLs need it

    @staticmethod
    def _alive(port: int) -> bool:
        try:
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/moto-api/", timeout=5
            ).read()  # the dashboard: data.json serialises all state
            return True
        except OSError:
            return False

    def kept(self) -> dict | None:
        """The kept server's record (port, pid) when one is running, else None (a stale record is removed)."""
        try:
            saved = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if _process_exists(saved.get("pid")) and self._alive(saved.get("port", 0)):
            return saved
        self.state_file.unlink(missing_ok=True)
        return None

    def start(self) -> bool:
        """Reuse the kept server, or start one; True when a kept server (and its state) was reused."""
        saved = self.kept()
        if saved is not None:
            self.port, self.reused = saved["port"], True
            return True
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_file.parent / "moto.log", "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._alive(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BuildError(f"the local AWS emulator did not start (see {self.state_file.parent / 'moto.log'})")
            time.sleep(0.2)
        return False

    def keep(self) -> None:
        """Leave the server running after this run and record it for the next one."""
        self.state_file.write_text(
            json.dumps({"port": self.port, "pid": self.process.pid if self.process else self.kept()["pid"]})
        )

    def stop(self) -> bool:
        """Stop the server this run started, or the kept one; True when one was running."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
            self.state_file.unlink(missing_ok=True)
            return True
        saved = self.kept()
        if saved is None:
            return False
        os.killpg(saved["pid"], signal.SIGTERM)  # its own session (start_new_session): the server and nothing else
        self.state_file.unlink(missing_ok=True)
        return True

    def environ(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}


def _process_exists(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
