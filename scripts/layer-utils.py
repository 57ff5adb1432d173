#!/usr/bin/env python3
"""Layer upkeep with a --layer option: build|optimize|validate|report|status|clean [--layer NAME].

The same commands as scripts/manage-layers.sh (which takes the layer as an argument), for those
used to this form: python3 scripts/layer-utils.py optimize --layer ml-libraries --verbose.
Any python3 may start it: it runs itself with the project environment.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tooling"))

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build.cli import main_with_layer_option  # noqa: E402

sys.exit(main_with_layer_option(sys.argv[1:]))
