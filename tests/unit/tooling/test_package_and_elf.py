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
