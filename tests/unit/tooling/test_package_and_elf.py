import os
import shutil
import time
from pathlib import Path

from lambda_build import elfcheck, package


def test_zip_is_reproducible_whatever_the_mtimes(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "python" / "pkg").mkdir(parents=True)
        (tmp_path / name / "python" / "pkg" / "mod.pyc").write_bytes(b"data" * 100)
        (tmp_path / name / "python" / "top.py").write_text("x = 1\n")
    past = time.time() - 86_400
    os.utime(tmp_path / "b" / "python" / "top.py", (past, past))
    first = package.write_zip(tmp_path / "a", tmp_path / "a.zip")
    second = package.write_zip(tmp_path / "b", tmp_path / "b.zip")
    assert first["sha256"] == second["sha256"]
    (tmp_path / "b" / "python" / "top.py").write_text("x = 2\n")
    assert package.write_zip(tmp_path / "b", tmp_path / "c.zip")["sha256"] != first["sha256"]


def test_the_one_zip_writer_serves_the_size_gate_and_the_local_stack_reproducibly(tmp_path):
    import io
    import zipfile

    from lambda_build.offline.stack import zip_folder

    root = tmp_path / "fn"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    buffer = io.BytesIO()
    size = package.zip_into(buffer, root, [root / "run.sh"], compresslevel=None)  # only the files given
    assert size == len(buffer.getvalue())
    with zipfile.ZipFile(buffer) as archive:
        assert [(i.filename, i.date_time, i.external_attr >> 16 & 0o777) for i in archive.infolist()] == [
            ("run.sh", package.FIXED_DATE, 0o755)
        ]
    first = zip_folder(root)
    past = time.time() - 86_400
    os.utime(root / "pkg" / "a.py", (past, past))
    assert zip_folder(root) == first
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["run.sh", "pkg/a.py"]


def _system_elf() -> Path:
    return Path(shutil.which("true")).resolve()


def test_elf_machine_mismatch_is_named(tmp_path, layer_config):
    arch = layer_config.architecture("x86_64")
    data = bytearray(_system_elf().read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    target = tmp_path / "pkg" / "mod.cpython-313-x86_64-linux-gnu.so"
    target.parent.mkdir()
    target.write_bytes(bytes(data))
    problems = elfcheck.check_file(target, "pkg/mod.so", layer_config, arch)
    assert any("machine EM_AARCH64" in p.reason for p in problems), problems


def test_extension_for_another_python_is_named(tmp_path, layer_config):
    arch = layer_config.architecture("x86_64")
    target = tmp_path / "mod.cpython-312-x86_64-linux-gnu.so"
    shutil.copy(_system_elf(), target)
    reasons = [p.reason for p in elfcheck.check_file(target, target.name, layer_config, arch)]
    assert reasons == [f"extension built for cpython-312, runtime is {layer_config.runtime}"]


def test_glibc_newer_than_the_runtime_is_named(tmp_path, layer_config):
    import dataclasses

    arch = layer_config.architecture("x86_64")
    old_runtime = dataclasses.replace(layer_config, glibc=(2, 2))
    problems = elfcheck.check_file(_system_elf(), "true", old_runtime, arch)
    assert any(p.reason.startswith("needs GLIBC_2.") and "the runtime has 2.2" in p.reason for p in problems), problems
