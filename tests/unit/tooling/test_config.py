import pytest
from lambda_build import config
from lambda_build.template import functions


def test_layers_are_declared_once_in_mount_order(layer_config):
    assert [layer.name for layer in layer_config.layers] == ["core-data-science", "ml-libraries", "aws-utilities"]
    assert [layer.position for layer in layer_config.layers] == [0, 1, 2]
    for layer in layer_config.layers:
        assert layer.requirements.exists(), layer.requirements


def test_target_and_limits(layer_config):
    assert layer_config.runtime == f"python{layer_config.python_version}"
    assert layer_config.default_architecture in layer_config.architectures
    assert layer_config.limits["function_and_layers_unzipped"] == 262_144_000
    assert layer_config.budgets["all_layers_unzipped"] < layer_config.limits["function_and_layers_unzipped"]


def test_unknown_names_are_clear_errors(layer_config):
    with pytest.raises(config.ConfigError, match="unknown layer 'pandas'"):
        layer_config.layer("pandas")
    with pytest.raises(config.ConfigError, match="unknown architecture 'sparc'"):
        layer_config.architecture("sparc")


def test_template_runtime_and_layers_come_from_the_config(layer_config):
    specs = functions(layer_config)
    assert specs, "template.yaml declares no functions"
    known = {layer.name for layer in layer_config.layers}
    order = [layer.name for layer in layer_config.layers]
    for spec in specs:
        assert set(spec.layers) <= known
        # Functions list layers in mount order, so "later wins" means the same everywhere.
        assert list(spec.layers) == sorted(spec.layers, key=order.index), spec


def test_broken_config_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "layers" / "layers.toml"
    bad.parent.mkdir()
    bad.write_text("[target\n")
    with pytest.raises(config.ConfigError, match=str(bad)):
        config.load(bad)


def test_an_architecture_can_have_its_own_budget(layer_config, tmp_path):
    raw = layer_config.raw["budgets"]
    for arch in layer_config.architectures:
        budgets = layer_config.budgets_for(arch)
        expected = raw.get("architectures", {}).get(arch, {}).get("all_layers_unzipped", raw["all_layers_unzipped"])
        assert budgets["all_layers_unzipped"] == expected < layer_config.limits["function_and_layers_unzipped"]
        assert budgets["function_code_unzipped"] == raw["function_code_unzipped"]
    assert layer_config.budgets_for(None) == layer_config.budgets_for(layer_config.default_architecture)
    text = layer_config.path.read_text() + "\n[budgets.architectures.sparc]\nall_layers_unzipped = 1\n"
    broken = tmp_path / "layers" / "layers.toml"
    broken.parent.mkdir()
    broken.write_text(text)
    with pytest.raises(config.ConfigError, match=r"budgets for unknown architectures \['sparc'\]"):
        config.load(broken)
