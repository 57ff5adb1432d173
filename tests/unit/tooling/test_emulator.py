"""The local emulator: a kept server is found and reused by the next run, --stop ends it, and a
stale record (its server gone) is dropped instead of being trusted."""

from __future__ import annotations

import json
import os

import pytest
from lambda_build.offline.emulator import ACCOUNT, REGION, Emulator, arn


@pytest.fixture
def emulator(tmp_path):
    first = Emulator(tmp_path)
    yield first
    Emulator(tmp_path).stop()
    first.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_a_kept_server_is_reused_then_stopped(emulator, tmp_path):
    assert emulator.start() is False
    emulator.keep()
    pid = json.loads((tmp_path / "server.json").read_text())["pid"]
    second = Emulator(tmp_path)
    assert second.start() is True and second.endpoint == emulator.endpoint, "the next run reuses it: no second server"
    second.keep()
    assert json.loads((tmp_path / "server.json").read_text())["pid"] == pid
    assert Emulator(tmp_path).stop() is True
    emulator.process.wait(timeout=10)
    assert not alive(pid) and not (tmp_path / "server.json").exists()
    assert Emulator(tmp_path).kept() is None


def test_a_server_not_kept_is_stopped_with_its_run(emulator, tmp_path):
    emulator.start()
    process = emulator.process
    assert emulator.stop() is True and process.poll() is not None
    assert Emulator(tmp_path).kept() is None


def test_a_stale_record_is_dropped(tmp_path):
    (tmp_path / "server.json").write_text(json.dumps({"port": 1, "pid": 2**22 + 12345}))
    assert Emulator(tmp_path).kept() is None and not (tmp_path / "server.json").exists()


def test_offline_arns_carry_the_one_region_and_moto_s_account():
    from moto.core import DEFAULT_ACCOUNT_ID

    assert ACCOUNT == DEFAULT_ACCOUNT_ID, "ARNs built offline must match the ones moto hands out"
    assert arn("lambda", "function:Fn") == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Fn"
