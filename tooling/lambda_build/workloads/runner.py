"""Run inside the target interpreter (``python3.13 -I -S -B``) with only merged layers on the path.

Usage: runner.py PYTHON_DIR SPEC_JSON. Imports every top-level module of the merged layers,
then runs each named workload file; prints one JSON object. Standard library only.
"""

import importlib
import json
import os
import runpy
import sys
import time
import traceback


def top_level_modules(python_dir):
    names = set()
    for entry in os.listdir(python_dir):
        path = os.path.join(python_dir, entry)
        if entry.endswith((".dist-info", ".libs", ".data")) or entry.startswith(("_", ".")) and entry != "__pycache__":
            continue
        if os.path.isdir(path) and any(os.path.exists(os.path.join(path, init)) for init in ("__init__.py", "__init__.pyc")):
            names.add(entry)
        elif entry.endswith((".py", ".pyc")):
            names.add(entry.rsplit(".", 1)[0])
        elif entry.endswith(".so"):
            names.add(entry.split(".", 1)[0])
    return sorted(names)


def main():
    python_dir, spec = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, python_dir)
    result = {"python": sys.version.split()[0], "imports": {}, "workloads": {}, "failures": []}
    for name in top_level_modules(python_dir):
        started = time.perf_counter()
        try:
            importlib.import_module(name)
            result["imports"][name] = round(time.perf_counter() - started, 4)
        except BaseException as exc:  # report, never crash: the caller turns this into one line
            result["failures"].append({"what": f"import {name}", "error": f"{type(exc).__name__}: {exc}"})
    for workload in spec["workloads"]:
        started = time.perf_counter()
        try:
            namespace = runpy.run_path(workload, run_name="workload")
            facts = namespace["run"](spec.get("params", {}))
            result["workloads"][os.path.basename(workload)] = {"seconds": round(time.perf_counter() - started, 3), "facts": facts}
        except BaseException as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            result["failures"].append(
                {
                    "what": f"workload {os.path.basename(workload)}",
                    "error": f"{type(exc).__name__}: {exc} ({frame.filename}:{frame.lineno})",
                }
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
