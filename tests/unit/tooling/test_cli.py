"""manage-layers.sh's command line: shared options work before and after the command."""

from __future__ import annotations

import json

import pytest
from lambda_build.cli import parse_args


@pytest.mark.parametrize(
    "argv",
    [
        ["--arch", "arm64", "--format", "json", "--verbose", "build", "all"],
        ["build", "all", "--arch", "arm64", "--format", "json", "--verbose"],
        ["--arch", "arm64", "build", "--format", "json", "all", "--verbose"],
    ],
)
def test_shared_options_are_kept_wherever_they_stand(argv):
    args = parse_args(argv)
    assert (args.command, args.layer, args.arch, args.format, args.verbose) == ("build", "all", "arm64", "json", True)


def test_defaults_when_not_given():
    args = parse_args(["validate", "ml-libraries"])
    assert (args.arch, args.format, args.verbose, args.static_only, args.layer) == (None, "text", False, False, "ml-libraries")


@pytest.mark.parametrize("command", ["validate", "report", "status", "build"])
def test_an_unknown_layer_is_refused_by_every_command_before_any_work(command, monkeypatch, capsys):
    from lambda_build import cli

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started for an unknown layer")

    for name in ("verify", "verify_cached", "report", "status"):
        monkeypatch.setattr(cli, name, must_not_run)
    monkeypatch.setattr(cli.buildmod, "build", must_not_run)
    assert cli.main([command, "nosuch"]) == 1
    assert (
        capsys.readouterr().err.strip() == "error: unknown layer 'nosuch' (known: core-data-science, ml-libraries, aws-utilities)"
    )


def test_each_command_runs_its_own_runner_with_the_selected_layer(monkeypatch, capsys):
    from lambda_build import cli

    calls = []
    monkeypatch.setattr(cli.buildmod, "clean", lambda config, layer: calls.append(("clean", layer)) or ["a", "b"])
    data = {"layers": {}, "total_unzipped_bytes": 0, "budget_bytes": 1, "within_budget": True}
    monkeypatch.setattr(cli, "report", lambda config, layer: calls.append(("report", layer)) or data)
    assert cli.main(["clean", "aws-utilities"]) == 0
    assert capsys.readouterr().out == "removed 2 build outputs\n"
    assert cli.main(["report", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == data
    assert calls == [("clean", "aws-utilities"), ("report", "all")]


def test_optimize_forgets_the_build_record_then_builds(monkeypatch, tmp_path, capsys):
    from lambda_build import cli

    monkeypatch.setenv("ITEM_PREDICTION_BUILD_DIR", str(tmp_path))
    record = tmp_path / "layers" / "aws-utilities.build.json"
    record.parent.mkdir()
    record.write_text("{}")
    built = {"rebuilt": True, "unzipped_bytes": 1000, "zip_bytes": 10, "zip_sha256": "ab" * 32}

    def build(config, arch, layer, clean):
        assert not record.exists() and (layer, clean) == ("aws-utilities", False)
        return {"aws-utilities": built}

    monkeypatch.setattr(cli.buildmod, "build", build)
    monkeypatch.setattr(cli.buildmod, "read_info", lambda config, layer: None)  # not every layer built: no verification
    assert cli.main(["optimize", "aws-utilities"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"aws-utilities: rebuilt, 1,000 bytes, zip sha256 {'ab' * 8}",
        "total 1,000 bytes unzipped; not verified (build all layers first)",
    ]
