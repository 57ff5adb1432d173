"""Run a repository script with the project's interpreter, whatever ``python3`` started it.

Users type ``python3 scripts/size-validation.py ...`` (the system Python, without our
dependencies); the script then sets up ``.venv`` if needed (``scripts/bootstrap.sh``) and
re-executes itself there. Standard library only (and ``config``, which is too): it runs before
any dependency is importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .config import REPO_ROOT  # config reads layers.toml with the standard library alone

PROJECT_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


def ensure_project_python(script: str) -> None:
    """Return when running in the project environment; otherwise re-execute ``script`` there."""
    if Path(sys.prefix).resolve() == (REPO_ROOT / ".venv").resolve():
        return
    completed = subprocess.run([str(REPO_ROOT / "scripts" / "bootstrap.sh"), "--quiet"], check=False)  # quick when done
    if completed.returncode != 0:
        print("error: could not set up the project environment (run scripts/bootstrap.sh to see why)", file=sys.stderr)
        sys.exit(1)
    os.execv(PROJECT_PYTHON, [str(PROJECT_PYTHON), script, *sys.argv[1:]])
