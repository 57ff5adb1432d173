"""The Lambda-like local runner: Lambda's paths, read-only code, warm starts, timeout, memory, REPORT."""

from __future__ import annotations

import re
import textwrap

import pytest
from lambda_build.offline.sandbox import LocalFunction, sandbox_available

pytestmark = pytest.mark.layers

HANDLER = textwrap.dedent(
    """
    import os, sys, time
    import pandas as pd

    def handler(event, context):
        print("rows", len(pd.DataFrame({"a": [1, 2, 3]})))
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("eat_mb"):
            block = bytearray(event["eat_mb"] * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
        if event.get("write"):
            try:
                open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "new"), "w").write("x")
                return "written"
            except OSError as exc:
                return exc.strerror
        if event.get("fail"):
            raise ValueError("bad input")
        return {"pandas": pd.__file__, "path": sys.path[:2], "pid": os.getpid(),
                "remaining_ms": context.get_remaining_time_in_millis(), "tmp": os.environ["TMPDIR"],
                "threads": os.environ.get("OMP_NUM_THREADS")}
    """
)


@pytest.fixture
def demo(built_layers, tmp_path):
    code = tmp_path / "code" / "demo"
    code.mkdir(parents=True)
    (code / "app.py").write_text(HANDLER)
    layers = {name: built_layers.layer_output(built_layers.layer(name)) for name in ("core-data-science", "aws-utilities")}
    function = LocalFunction(
        "DemoFunction",
        "demo.app.handler",
        tmp_path / "code",
        layers,
        python_version=built_layers.python_version,
        memory_mb=256,
        timeout_s=2,
        work_dir=tmp_path / "work",
    )
    yield function
    function.stop()


def test_cold_then_warm_with_lambda_paths_and_reports(demo):
    cold = demo.invoke({})
    warm = demo.invoke({})
    assert cold.error is None and warm.error is None
    assert cold.init_ms is not None and cold.init_ms > 0 and warm.init_ms is None
    assert warm.result["pid"] == cold.result["pid"], "a warm invocation reuses the process"
    if demo.sandbox:
        assert cold.result["path"] == ["/var/task", "/opt/python"]
        assert cold.result["pandas"] == "/opt/python/pandas/__init__.pyc"
    assert 0 < cold.result["remaining_ms"] <= 2000
    assert "rows 3" in cold.logs
    assert re.fullmatch(
        r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\t"
        r"Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms",
        cold.logs[-1],
    )
    assert "Init Duration" not in warm.logs[-1]
    assert cold.result["threads"] == "1", "256 MB is a fraction of a vCPU: one OpenMP thread"


@pytest.mark.skipif(not sandbox_available(), reason="no private mount namespace on this machine (unshare -m)")
def test_code_directory_is_read_only(demo):
    assert demo.invoke({"write": True}).result == "Read-only file system"


def test_timeout_kills_and_next_call_is_cold(demo):
    timed_out = demo.invoke({"sleep": 5})
    assert timed_out.error == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 2.00 seconds"}
    assert "rows 3" in timed_out.logs, "lines printed before the timeout are kept"
    assert demo.invoke({}).init_ms is not None


def test_memory_limit_is_enforced(demo):
    result = demo.invoke({"eat_mb": 400})
    assert result.error["errorType"] == "Runtime.OutOfMemory"
    assert demo.invoke({}).error is None


def test_handler_errors_are_returned_not_raised(demo):
    result = demo.invoke({"fail": True})
    assert result.error["errorType"] == "ValueError" and result.error["errorMessage"] == "bad input"
    assert demo.invoke({}).init_ms is None, "an error keeps the environment warm"
