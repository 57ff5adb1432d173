#!/usr/bin/env python3
"""Size gate: validate|check|report [--target layers|functions|all] [--format text|json].

A thin entry point over lambda_build.size_gate. Any python3 may start it: it runs itself with
the project environment (.venv, set up on first use).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tooling"))

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build.size_gate import main  # noqa: E402

sys.exit(main())
