#!/usr/bin/env python3
"""Benchmark layer variants side by side (naive, strip-only, ours): sizes and cold import time.

Run with the project environment: .venv/bin/python scripts/bench_layers.py [--runs 7] [--format json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tooling"))

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build.bench import main  # noqa: E402

sys.exit(main())
