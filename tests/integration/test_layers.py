"""The built layers against the issue's promises: size, exclusivity, caching, reproducibility, verification."""

from __future__ import annotations

import json
import shutil

import pytest
from lambda_build import build as buildmod
from lambda_build.tools import tree_bytes

from ..conftest import replace_file, run_layers_cli

pytestmark = pytest.mark.layers


def test_all_layers_fit_the_budget_and_zip_limit(built_layers):
    total = 0
    for layer in built_layers.layers:
        unzipped = tree_bytes(built_layers.layer_output(layer))
        zipped = built_layers.layer_zip(layer).stat().st_size
        assert zipped <= built_layers.budgets["layer_zipped"], (layer.name, zipped)
        total += unzipped
    assert total <= built_layers.budgets["all_layers_unzipped"], total


def test_validate_all_passes_on_the_target_interpreter(built_layers):
    completed = run_layers_cli("validate", "all", "--format", "json")
    report = json.loads(completed.stdout)
    assert report["problems"] == [] and report["runtime_checks"] == "run"
    predictions = report["sets"]["PredictionsFunction"]
    assert predictions["python"].startswith(built_layers.python_version + ".")
    assert {"pandas", "numpy", "sklearn", "scipy", "joblib", "boto3", "aws_lambda_powertools"} <= set(predictions["imports"])
    facts = predictions["workloads"]["ml.py"]["facts"]
    assert facts["mae"] < facts["baseline_mae"] and facts["p90_coverage"] > 0.75
    # the Parquet engine works in the layer: appended row groups, each codec, read back exactly
    parquet = predictions["workloads"]["core.py"]["facts"]["parquet"]
    assert set(parquet["bytes"]) == {"SNAPPY", "ZSTD", "GZIP"} and all(size > 0 for size in parquet["bytes"].values())
    # numpy (ILP64) and scipy (LP64) each load their own OpenBLAS; both must be there.
    assert {"openblas"} <= {api.split("64")[0] for api in facts["blas"]}


def test_no_distribution_is_in_two_layers(built_layers):
    seen: dict[str, str] = {}
    for layer in built_layers.layers:
        for info in (built_layers.layer_output(layer) / "python").glob("*.dist-info"):
            name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower()
            assert name not in seen, f"{name} in {seen.get(name)} and {layer.name}"
            seen[name] = layer.name
    assert {"numpy", "scipy", "boto3"} <= seen.keys()


def test_a_distribution_in_two_layers_fails_validation(layer_copy):
    layers = layer_copy / "layers"
    numpy_info = next((layers / "core-data-science" / "python").glob("numpy-*.dist-info"))
    shutil.copytree(numpy_info, layers / "aws-utilities" / "python" / numpy_info.name)
    completed = run_layers_cli("validate", "all", env={"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}, check=False)
    assert completed.returncode == 1
    assert "distribution numpy is in more than one layer: core-data-science, aws-utilities" in completed.stdout


def test_second_build_does_no_work(built_layers):
    before = {layer.name: built_layers.layer_zip(layer).stat().st_mtime_ns for layer in built_layers.layers}
    completed = run_layers_cli("build", "all", "--format", "json")
    result = json.loads(completed.stdout)
    assert all(not item["rebuilt"] for item in result["layers"].values())
    assert "verified (cached)" not in completed.stdout  # json mode: the summary is data, not prose
    after = {layer.name: built_layers.layer_zip(layer).stat().st_mtime_ns for layer in built_layers.layers}
    assert before == after


def test_status_reports_built_and_stale(built_layers, tmp_path):
    status = json.loads(run_layers_cli("status", "all", "--format", "json").stdout)
    assert {item["state"] for item in status.values()} == {"built"}


def test_a_stripped_vendored_library_fails_validation_naming_it(layer_copy):
    libs = next((layer_copy / "layers" / "core-data-science" / "python").glob("numpy.libs/*.so*"))
    stripped = libs.with_name("stripped.tmp")
    import subprocess

    subprocess.run(["strip", "-o", str(stripped), str(libs)], check=True)
    replace_file(libs, stripped.read_bytes())
    stripped.unlink()
    completed = run_layers_cli("validate", "all", env={"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}, check=False)
    assert completed.returncode == 1
    relative = libs.relative_to(layer_copy / "layers" / "core-data-science" / "python").as_posix()
    lines = [line for line in completed.stdout.splitlines() if relative in line]
    assert lines == [
        f"core-data-science: {relative}: vendored library differs from its wheel (modified after install; never strip *.libs/)"
    ]
    assert completed.stderr.strip().splitlines()[-1].startswith("error: core-data-science: ")


@pytest.mark.parametrize(
    ("new_name", "patch_machine", "reason"),
    [
        ("_fake.cpython-312-x86_64-linux-gnu.so", False, "extension built for cpython-312, runtime is python3.13"),
        ("_fake.cpython-313-x86_64-linux-gnu.so", True, "machine EM_AARCH64, architecture x86_64 needs EM_X86_64"),
    ],
)
def test_an_extension_for_another_target_fails_validation(layer_copy, new_name, patch_machine, reason):
    python = layer_copy / "layers" / "core-data-science" / "python"
    source = next(python.glob("numpy/_core/_multiarray_umath.*.so"))
    data = bytearray(source.read_bytes())
    if patch_machine:
        data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64: as if an arm64 wheel had been unpacked
    (python / "numpy" / new_name).write_bytes(bytes(data))
    completed = run_layers_cli("validate", "all", env={"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}, check=False)
    assert completed.returncode == 1
    assert f"core-data-science: numpy/{new_name}: {reason}" in completed.stdout.splitlines()


@pytest.mark.slow
def test_two_clean_builds_give_identical_zips(built_layers, tmp_path):
    """A clean build elsewhere reproduces every layer zip byte for byte (so SAM publishes nothing new)."""
    env = {"ITEM_PREDICTION_BUILD_DIR": str(tmp_path / "fresh")}
    result = json.loads(run_layers_cli("build", "all", "--clean", "--format", "json", env=env).stdout)
    for layer in built_layers.layers:
        original = buildmod.read_info(built_layers, layer)["zip_sha256"]
        assert result["layers"][layer.name]["rebuilt"] is True
        assert result["layers"][layer.name]["zip_sha256"] == original, layer.name


@pytest.fixture
def interpreter_on(monkeypatch):
    """Make verification believe the target interpreter runs on another machine (arm64 layers
    built on an x86_64 host look like this from the other side)."""
    from lambda_build import verify as verifymod

    def pretend(machine: str) -> None:
        monkeypatch.setattr(verifymod, "interpreter_machine", lambda python: machine)

    return pretend


def test_layers_the_interpreter_cannot_load_fail_verification_with_the_way_out(layer_copy, interpreter_on):
    from lambda_build import config, verify

    cfg = config.load()
    interpreter_on("aarch64")
    report = verify.verify(cfg, cfg.architecture("x86_64"))
    (problem,) = report["problems"]
    assert (
        problem.startswith("x86_64: the target interpreter ")
        and "runs on aarch64, not x86_64" in problem
        and "--static-only" in problem
    )
    assert report["sets"] == {}, "nothing was imported"


def test_static_only_says_what_did_not_run_and_still_checks_elf_files(layer_copy, interpreter_on):
    from lambda_build import config, verify

    cfg = config.load()
    interpreter_on("aarch64")
    report = verify.verify(cfg, cfg.architecture("x86_64"), static_only=True)
    assert report["problems"] == [] and report["runtime_checks"].startswith("not run (--static-only): ")
    checked = {name: layer["elf_files_checked"] for name, layer in report["layers"].items()}
    assert report["sets"] == {} and set(checked) == {layer.name for layer in cfg.layers}
    assert checked["core-data-science"] > 0 and checked["ml-libraries"] > 0  # aws-utilities is pure Python
    vendored = next((layer_copy / "layers" / "core-data-science" / "python").glob("numpy.libs/*.so*"))
    data = vendored.read_bytes()
    replace_file(vendored, data[:-1] + bytes([data[-1] ^ 0xFF]))  # one byte changed
    broken = verify.verify(cfg, cfg.architecture("x86_64"), static_only=True)
    assert len(broken["problems"]) == 1 and "vendored library differs from its wheel" in broken["problems"][0]


def test_on_its_own_machine_the_interpreter_runs_everything(built_layers):
    from lambda_build import verify

    assert verify.foreign_architecture(built_layers, built_layers.architecture(None)) is None
