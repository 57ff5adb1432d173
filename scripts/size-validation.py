#!/usr/bin/env python3
"""Size gate: validate|check|report [--target layers|functions|all] [--format text|json].

A thin entry point over lambda_build.size_gate; run it with the project environment
(.venv/bin/python scripts/size-validation.py validate) or plain python3.11+ with the dev deps.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tooling"))

from lambda_build.size_gate import main  # noqa: E402

sys.exit(main())
