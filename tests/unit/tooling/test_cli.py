"""manage-layers.sh's command line: shared options work before and after the command."""

from __future__ import annotations

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
    assert capsys.readouterr().err.strip() == "error: unknown layer 'nosuch' (known: core-data-science, ml-libraries, aws-utilities)"
