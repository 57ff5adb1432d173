#!/usr/bin/env python3
"""Cold starts side by side: each function's init duration from our layers and from a source-only
build of the same layers, in the Lambda-like local runner. Run after ./build.sh:
.venv/bin/python scripts/bench_cold_start.py [--runs 5] [--format json]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tooling"))

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build.bench import main  # noqa: E402

sys.exit(main(["--cold-starts", *sys.argv[1:]]))
