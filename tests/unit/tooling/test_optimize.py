"""The optimizer rules on a small synthetic layer: each removes what it names and nothing else."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from lambda_build import optimize
from lambda_build.optimize import Context


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def ctx(layer_config):
    return Context(layer_config, layer_config.architecture())


def test_test_suites_docs_sources_and_stubs_go(tmp_path, ctx):
    _tree(
        tmp_path,
        {
            "pkg/__init__.py": b"",
            "pkg/core.py": b"x = 1\n",
            "pkg/core.pyi": b"x: int\n",
            "pkg/tests/__init__.py": b"",
            "pkg/tests/test_core.py": b"assert True\n",
            "pkg/conftest.py": b"",
            "pkg/testing.py": b"# a real module, not a test suite\n",
            "pkg/src/fast.c": b"int f;",
            "pkg/include/fast.h": b"int f;",
            "pkg/_loss.pyx.tp": b"{{py:}}",
            "pkg/README.md": b"# doc",
            "pkg/docs/index.rst": b"doc",
            "pkg/docs_impl/__init__.py": b"",
            "pkg-1.0.dist-info/METADATA": b"Name: pkg\n",
            "pkg-1.0.dist-info/licenses/README.md": b"license",
            "pkg.libs/libfast.h": b"vendored: untouched",
        },
    )
    results = {
        r.name: r
        for r in (
            rule(tmp_path, ctx)
            for rule in (optimize.drop_test_suites, optimize.drop_docs, optimize.drop_sources, optimize.drop_type_stubs)
        )
    }
    assert _files(tmp_path) == {
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/testing.py",
        "pkg/docs_impl/__init__.py",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/licenses/README.md",
        "pkg.libs/libfast.h",
    }
    assert results["test-suites"].files == 3
    assert results["c-sources-headers"].bytes_removed == len(b"int f;") * 2 + len(b"{{py:}}")
    assert results["type-stubs"].by_package == {"pkg": len(b"x: int\n")}


def test_service_models_keep_only_the_listed_services(tmp_path, ctx):
    kept = ctx.config.aws_services[0]
    _tree(
        tmp_path,
        {
            f"botocore/data/{kept}/2006-03-01/service-2.json.gz": b"k",
            "botocore/data/ec2/2016-11-15/service-2.json.gz": b"e",
            "botocore/data/endpoints.json": b"{}",
            f"boto3/data/{kept}/2006-03-01/resources-1.json": b"r",
            "boto3/data/ec2/2016-11-15/resources-1.json": b"r",
        },
    )
    optimize.prune_aws_service_models(tmp_path, ctx)
    assert _files(tmp_path) == {
        f"botocore/data/{kept}/2006-03-01/service-2.json.gz",
        "botocore/data/endpoints.json",
        f"boto3/data/{kept}/2006-03-01/resources-1.json",
    }


def test_keep_list_wins_over_prune(tmp_path, ctx):
    _tree(tmp_path, {"scipy/io/__init__.py": b"", "scipy/signal/__init__.py": b"", "scipy/__init__.py": b""})
    config = dataclasses.replace(ctx.config, prune_unused=("scipy/io", "scipy/signal"), keep=("scipy/signal",))
    result = optimize.prune_unused_modules(tmp_path, Context(config, ctx.arch))
    assert _files(tmp_path) == {"scipy/__init__.py", "scipy/signal/__init__.py"}
    assert result.files == 1


def test_strip_never_touches_vendored_libraries(tmp_path, ctx):
    compiled = shutil.which("cc") or shutil.which("gcc")
    if compiled is None:
        pytest.fail("a C compiler is needed to make a test extension (apt-get install gcc)")
    source = tmp_path / "ext.c"
    source.write_text("int answer(void) { return 42; }\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg.libs").mkdir()
    own = tmp_path / "pkg" / "ext.cpython-313-x86_64-linux-gnu.so"
    subprocess.run([compiled, "-g", "-shared", "-fPIC", str(source), "-o", str(own)], check=True)
    vendored = tmp_path / "pkg.libs" / "libext.so"
    shutil.copy(own, vendored)
    source.unlink()
    before = vendored.read_bytes()
    result = optimize.strip_extensions(tmp_path, ctx)
    assert result.files == 1 and result.bytes_removed > 0  # -g added debug info to strip
    assert own.stat().st_size < len(before)
    assert vendored.read_bytes() == before


def test_bytecode_is_sourceless_hash_based_and_names_opt_python(tmp_path, ctx):
    _tree(tmp_path, {"pkg/__init__.py": b"def where():\n    raise ValueError('here')\n"})
    result = optimize.compile_bytecode(tmp_path, ctx)
    assert _files(tmp_path) == {"pkg/__init__.pyc"}
    data = (tmp_path / "pkg" / "__init__.pyc").read_bytes()
    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01, "expected unchecked-hash bytecode (PEP 552 flags=1)"
    assert b"/opt/python/pkg/__init__.py" in data, "tracebacks must name the path Lambda mounts"
    assert result.files == 1


def test_console_scripts_go_with_their_record_lines(tmp_path, ctx):
    """Installers write the build machine's interpreter into scripts: keeping them (or their
    hashes in RECORD) would make a layer differ between two checkouts."""
    _tree(
        tmp_path,
        {
            "bin/jp.py": b"#!/home/someone/.venv/bin/python\n",
            "jmespath/__init__.py": b"",
            "jmespath-1.0.dist-info/RECORD": b"bin/jp.py,sha256=abc,30\njmespath/__init__.py,sha256=def,0\n",
        },
    )
    result = optimize.drop_console_scripts(tmp_path, ctx)
    assert _files(tmp_path) == {"jmespath/__init__.py", "jmespath-1.0.dist-info/RECORD"}
    assert (tmp_path / "jmespath-1.0.dist-info" / "RECORD").read_text() == "jmespath/__init__.py,sha256=def,0\n"
    assert result.files == 1


def test_a_strip_that_would_grow_a_file_is_not_kept(tmp_path, ctx, monkeypatch):
    """aarch64's strip can re-pad segments to 64 KiB pages: the original stays when smaller."""
    grown, shrunk = tmp_path / "pkg" / "a.cpython-313-x86_64-linux-gnu.so", tmp_path / "pkg" / "b.cpython-313-x86_64-linux-gnu.so"
    _tree(
        tmp_path,
        {
            "pkg/a.cpython-313-x86_64-linux-gnu.so": b"\x7fELF" + b"a" * 100,
            "pkg/b.cpython-313-x86_64-linux-gnu.so": b"\x7fELF" + b"b" * 100,
        },
    )

    def fake_strip(command):
        output, source = Path(command[-2]), Path(command[-1])
        output.write_bytes(source.read_bytes() + b"pad" * 50 if source == grown else source.read_bytes()[:50])
        return ""

    monkeypatch.setattr(optimize, "run", fake_strip)
    monkeypatch.setattr(optimize, "is_elf", lambda path: True)
    result = optimize.strip_extensions(tmp_path, ctx)
    assert grown.read_bytes() == b"\x7fELF" + b"a" * 100 and len(shrunk.read_bytes()) == 50
    assert (result.files, result.bytes_removed) == (1, 54)
    assert _files(tmp_path) == {"pkg/a.cpython-313-x86_64-linux-gnu.so", "pkg/b.cpython-313-x86_64-linux-gnu.so"}
