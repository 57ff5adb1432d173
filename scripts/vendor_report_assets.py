"""Vendor the report's charting library: Vega, Vega-Lite and vega-embed, pinned, from the npm registry.

Writes ``functions/item_prediction/domain/report_assets/vega-bundle.js.gz``: the three packages'
minified browser builds, concatenated in load order (vega, vega-lite, vega-embed) under a licence
header, gzip-compressed with no timestamp (the same input gives the same bytes). The report
inlines it (:mod:`item_prediction.domain.report`), so a page opens offline.

Reproducible: each tarball is fetched with ``npm pack`` (npm checks it against the registry's
integrity hash), then its sha512 is checked against the pin below, and each build file's sha256
too; any mismatch stops the script. ``--check`` rebuilds in memory and fails when the committed file
differs.

    .venv/bin/python scripts/vendor_report_assets.py [--check]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "functions" / "item_prediction" / "domain" / "report_assets" / "vega-bundle.js.gz"

# (package, version, tarball integrity as the registry states it, build file, sha256 of that file)
PINS = (
    (
        "vega",
        "6.4.0",
        "sha512-rHXCq2LpEWCLMjXBEj7hocY9G0/i5TGYRayGGSj06VTF4+l2IG2Z7oeZKCjWbUh/7hTE/mVhbaOPB72wCElh6g==",
        "package/build/vega.min.js",
        "8f6a3587cf8d4f42c7e08120e3eb05d067e746d554e39d2dcf52acc0bd5ba28f",
    ),
    (
        "vega-lite",
        "6.5.0",
        "sha512-fMXF6s0MrIg0UTWnLIfeFtgSLzVhyzSKobzGrh5rhS+mL6FOYFG3m7ouJ4U23gj65EK+gl9FIIT5w7wLNaAzkA==",
        "package/build/vega-lite.min.js",
        "83e215e84e308ee8688fa6503ba0f1cf8a3c05c0d61df2841a0b92bf86809e00",
    ),
    (
        "vega-embed",
        "7.3.0",
        "sha512-wQ8s5GaSzqoKgmRfbRolgBrjE2CP7ZKHXqH7NijxMqPjpdWxSs4Dn8tvp9g0giQvh2cK+3p56sxjWWM0wNngGw==",
        "package/build/vega-embed.min.js",
        "b1455caba2fb1a72fb46025ba0ba1316e2dbc7f0dd40a3f6040172bf9c08ba91",
    ),
)
HEADER = (
    "/* Vendored by scripts/vendor_report_assets.py: "
    + ", ".join(f"{name}@{version}" for name, version, *_ in PINS)
    + ". Each is (c) the University of Washington Interactive Data Lab, BSD-3-Clause licence:"
    " https://github.com/vega/vega/blob/main/LICENSE */\n"
)


def fetch(name: str, version: str, integrity: str, member: str, sha256: str, workdir: Path) -> bytes:
    """One package's build file, after checking the tarball's sha512 and the file's sha256."""
    subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--pack-destination", str(workdir), "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tarball = workdir / f"{name}-{version}.tgz"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != integrity:
        sys.exit(f"{tarball.name}: integrity {digest} is not the pinned {integrity}")
    with tarfile.open(tarball) as archive:
        data = archive.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != sha256:
        sys.exit(f"{name}@{version}:{member}: sha256 {hashlib.sha256(data).hexdigest()} is not the pinned {sha256}")
    return data


def bundle(parts: list[bytes]) -> bytes:
    """The gzip file's bytes: header, then each build on its own lines; no timestamp in the gzip."""
    text = HEADER.encode() + b"\n".join(part.rstrip() + b";" for part in parts) + b"\n"
    return gzip.compress(text, compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed file differs from a fresh build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        data = bundle([fetch(*pin, Path(workdir)) for pin in PINS])
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_bytes() == data
        print(f"{OUTPUT.relative_to(ROOT)}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(data):,} bytes gzip, {len(gzip.decompress(data)):,} bytes of JavaScript")
    return 0


if __name__ == "__main__":
    sys.exit(main())
