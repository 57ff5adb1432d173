"""A Lambda-like Python runtime loop, run by the target interpreter inside the local sandbox.

Standard library only: it runs with nothing but /var/task (the function's code) and
/opt/python (the merged layers) on its path, like Lambda's own bootstrap. The host side
(:mod:`lambda_build.offline.sandbox`) talks to it over two pipes, one JSON object per line, so the
function's own stdout and stderr stay free for its logs.

Usage: bootstrap.py HANDLER REQUEST_FD RESPONSE_FD CODE_DIR OPT_PYTHON
"""

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes and method of Lambda's context object that handlers use."""

    def __init__(self, request):
        self.function_name = request["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = request["invoked_function_arn"]
        self.memory_limit_in_mb = request["memory_mb"]
        self.aws_request_id = request["request_id"]
        self.log_group_name = request["log_group_name"]
        self.log_stream_name = request["log_stream_name"]
        self._deadline = time.time() + request["timeout_s"]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(exc)[-6:],
    }


def main():
    handler_path, request_fd, response_fd, code_dir, opt_python = sys.argv[1:6]
    # Lambda's order: the function's code first, then the layers, then the standard library.
    sys.path[:0] = [code_dir, opt_python]
    requests = os.fdopen(int(request_fd), "r")
    responses = os.fdopen(int(response_fd), "w")

    def send(message):
        responses.write(json.dumps(message, default=str) + "\n")
        responses.flush()

    module_name, _, function_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException as exc:  # an init error is reported, as Lambda does, not raised
        send({"init_error": _error(exc)})
        return
    send({"ready": True})
    for line in requests:
        request = json.loads(line)
        try:
            result = handler(request["event"], LambdaContext(request))
            send({"result": result})
        except BaseException as exc:
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            send({"error": _error(exc)})
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main()
