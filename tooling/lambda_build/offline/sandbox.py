"""Run a function's built artifact the way Lambda does, without Docker.

Each function runs in its own process of the target interpreter (python3.13). Where the machine
allows a private mount namespace (root, or unprivileged user namespaces), the function's code is
mounted read-only at ``/var/task`` and its layers, merged in template order (later wins), at
``/opt``, exactly the paths Lambda uses; elsewhere the same folders are used where they are.
The process is kept between invocations (warm starts) until it times out, runs out of memory or
dies, and every invocation ends with a Lambda-style ``REPORT`` line.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..tools import BuildError, target_python
from ..verify import merge_layers
from .emulator import arn

BOOTSTRAP = Path(__file__).resolve().parents[1] / "runtime" / "bootstrap.py"
MB = 1024 * 1024


@dataclass
class Invocation:
    """What one invocation returned, printed and cost."""

    request_id: str
    result: object = None
    error: dict | None = None
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    init_ms: float | None = None  # set on a cold start
    max_memory_mb: int = 0
    memory_mb: int = 0

    @property
    def report(self) -> str:
        line = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(self.duration_ms)} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {self.max_memory_mb} MB"
        )
        if self.init_ms is not None:
            line += f"\tInit Duration: {self.init_ms:.2f} ms"
        return line


def sandbox_available() -> bool:
    """Whether a private, read-only mount namespace can be made here (``unshare -m``)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


MB_PER_VCPU = 1769  # Lambda gives CPU in proportion to memory: one whole vCPU at 1,769 MB


def compute_threads(memory_mb: int, cpus: int | None = None) -> int:
    """OpenMP/BLAS threads for an environment of ``memory_mb``: its whole vCPUs (at least one,
    at most this machine's CPUs). On Lambda each environment has its own vCPUs; here the
    environments of a Map share the machine's cores, and a pool of processes each starting a
    thread per core would oversubscribe them (scikit-learn's OpenMP then spends its time waiting),
    which no Lambda bill shows."""
    return max(1, min(memory_mb // MB_PER_VCPU, cpus or os.cpu_count() or 1))


class LocalFunction:
    """One function's execution environment: cold on the first call, warm after."""

    def __init__(
        self,
        name: str,
        handler: str,
        code_dir: Path,
        layer_dirs: dict[str, Path],
        *,
        python_version: str,
        memory_mb: int,
        timeout_s: int,
        environment: dict[str, str] | None = None,
        work_dir: Path,
        use_sandbox: bool | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.code_dir = Path(code_dir)
        self.layer_dirs = layer_dirs
        self.python = target_python(python_version)
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.environment = {key: str(value) for key, value in (environment or {}).items()}
        self.work_dir = Path(work_dir)
        self.sandbox = sandbox_available() if use_sandbox is None else use_sandbox
        self.log_group = f"/aws/lambda/{name}"
        self.log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._process: subprocess.Popen | None = None
        self._logs: list[str] = []
        self._log_lock = threading.Lock()

    # -- process management -------------------------------------------------------------
    def _prepare(self) -> tuple[Path, Path]:
        opt = self.work_dir / "opt"
        merge_layers(self.layer_dirs, opt)
        tmp = self.work_dir / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return opt, tmp

    def _command(self, opt: Path, request_fd: int, response_fd: int) -> list[str]:
        python = [str(self.python), "-I", "-S", "-B", "-u", str(BOOTSTRAP), self.handler, str(request_fd), str(response_fd)]
        if not self.sandbox:
            return [*python, str(self.code_dir), str(opt / "python")]
        # Lambda's paths, read-only: /var/task for the code, /opt for the merged layers.
        script = (
            "set -e; mkdir -p /var/task; "
            f"mount --bind {_quote(self.code_dir)} /var/task; mount -o remount,bind,ro /var/task; "
            f"mount --bind {_quote(opt)} /opt; mount -o remount,bind,ro /opt; "
            'cd /var/task; exec "$@"'
        )
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *python, "/var/task", "/opt/python"]

    def _start(self) -> float:
        opt, tmp = self._prepare()
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "TMPDIR": str(tmp),
            "HOME": str(tmp),
            "LAMBDA_TASK_ROOT": "/var/task" if self.sandbox else str(self.code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{self.python.name.removeprefix('python')}",
            "OMP_NUM_THREADS": str(compute_threads(self.memory_mb)),  # the function's own setting wins
            "OPENBLAS_NUM_THREADS": str(compute_threads(self.memory_mb)),
            **self.environment,
        }
        started = time.perf_counter()
        self._process = subprocess.Popen(
            self._command(opt, request_read, response_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(request_read, response_write),
            env=env,
            cwd=str(self.code_dir),
            text=True,
        )
        os.close(request_read)
        os.close(response_write)
        self._requests = os.fdopen(request_write, "w")
        self._responses = os.fdopen(response_read, "r")
        threading.Thread(target=self._drain, args=(self._process,), daemon=True).start()
        message = self._read_response(self.timeout_s)
        if message is None or "init_error" in message:
            error = (message or {}).get("init_error") or {
                "errorType": "Runtime.ExitError",
                "errorMessage": "runtime exited during init",
            }
            self.stop()
            raise BuildError(f"{self.name}: init failed: {error['errorType']}: {error['errorMessage']}")
        return (time.perf_counter() - started) * 1000

    def _drain(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self._log_lock:
                self._logs.append(line.rstrip("\n"))

    def _read_response(self, timeout: float) -> dict | None:
        result: list = []
        reader = threading.Thread(target=lambda: result.append(self._responses.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive() or not result or not result[0]:
            return None
        return json.loads(result[0])

    def _rss_mb(self, key: str) -> int:
        try:
            for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            pass
        return 0

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def start_only(self) -> float:
        """Start a cold environment (runtime up, handler module imported); return its init duration in ms."""
        self.stop()
        return self._start()

    # -- invocation ---------------------------------------------------------------------
    def invoke(self, event: object) -> Invocation:
        """Invoke once: start the environment if cold, enforce timeout and memory, collect logs."""
        invocation = Invocation(request_id=str(uuid.uuid4()), memory_mb=self.memory_mb)
        if self._process is None or self._process.poll() is not None:
            invocation.init_ms = self._start()
        with self._log_lock:
            self._logs.clear()
        request = {
            "event": event,
            "request_id": invocation.request_id,
            "function_name": self.name,
            "invoked_function_arn": arn("lambda", f"function:{self.name}"),
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "log_group_name": self.log_group,
            "log_stream_name": self.log_stream,
        }
        over_memory = threading.Event()
        done = threading.Event()

        def watch_memory() -> None:
            while not done.wait(0.05):
                if self._rss_mb("VmRSS") > self.memory_mb:
                    over_memory.set()
                    self.stop()
                    return

        started = time.perf_counter()
        self._requests.write(json.dumps(request, default=str) + "\n")
        self._requests.flush()
        watcher = threading.Thread(target=watch_memory, daemon=True)
        watcher.start()
        message = self._read_response(self.timeout_s)
        invocation.duration_ms = (time.perf_counter() - started) * 1000
        invocation.max_memory_mb = self._rss_mb("VmHWM")
        done.set()
        watcher.join()
        if over_memory.is_set():
            invocation.error = {"errorType": "Runtime.OutOfMemory", "errorMessage": f"exceeded {self.memory_mb} MB"}
            invocation.max_memory_mb = self.memory_mb
        elif message is None:
            self.stop()
            invocation.error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds",
            }
        elif "error" in message:
            invocation.error = message["error"]
        else:
            invocation.result = message.get("result")
        time.sleep(0.02)  # let the drain thread catch the last lines the handler printed
        with self._log_lock:
            invocation.logs = [f"START RequestId: {invocation.request_id} Version: $LATEST", *self._logs]
            self._logs.clear()
        invocation.logs += [f"END RequestId: {invocation.request_id}", invocation.report]
        return invocation


def _quote(path: Path) -> str:
    text = str(path)
    return "'" + text.replace("'", "'\\''") + "'"
