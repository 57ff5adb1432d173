import pytest
from lambda_build import lock
from lambda_build.tools import BuildError
from packaging.version import Version

SAMPLE = """\
alpha==2.0 \\
    --hash=sha256:{a}
    # via -r layers/one/requirements.in
beta==1.5 \\
    --hash=sha256:{b}
    # via
    #   alpha
    #   gamma
gamma==0.3 \\
    --hash=sha256:{c}
    # via -r layers/two/requirements.in
""".format(a="a" * 64, b="b" * 64, c="c" * 64)


def test_parse_lock_reads_pins_hashes_and_dependants():
    entries = lock.parse_lock(SAMPLE)
    assert {name: entry.version for name, entry in entries.items()} == {"alpha": "2.0", "beta": "1.5", "gamma": "0.3"}
    assert entries["beta"].required_by == {"alpha", "gamma"}
    assert entries["alpha"].hashes == ["sha256:" + "a" * 64]
    assert lock.dependency_graph(entries)["gamma"] == {"beta"}


def test_every_locked_distribution_is_in_exactly_one_layer(layer_config):
    entries = lock.read_lock(layer_config)
    assignment = lock.assign_layers(layer_config, entries)
    owners = [entry.name for items in assignment.values() for entry in items]
    assert sorted(owners) == sorted(entries), "a distribution is missing or in two layers"
    names = {layer: {entry.name for entry in items} for layer, items in assignment.items()}
    assert {"pandas", "numpy", "python-dateutil"} <= names["core-data-science"]
    assert {"scikit-learn", "scipy", "joblib", "threadpoolctl"} <= names["ml-libraries"]
    assert "numpy" not in names["ml-libraries"]
    assert {"boto3", "botocore", "s3transfer", "aws-lambda-powertools"} <= names["aws-utilities"]


def test_layer_dependencies_follow_the_graph(layer_config):
    needs = lock.layer_dependencies(layer_config, lock.read_lock(layer_config))
    assert needs["ml-libraries"] == {"core-data-science"}  # numpy
    assert needs["aws-utilities"] == {"core-data-science"}  # python-dateutil, via botocore
    assert needs["core-data-science"] == set()


def test_the_lock_is_fully_hashed_and_meets_every_floor(layer_config):
    entries = lock.read_lock(layer_config)
    assert all(entry.hashes for entry in entries.values())
    assert lock.check_floors(layer_config, entries) == []


def test_a_backtracked_resolution_is_caught(layer_config):
    entries = lock.read_lock(layer_config)
    entries["boto3"].version = "0.0.3"  # what an unconstrained resolver once answered here
    problems = lock.check_floors(layer_config, entries)
    assert any(p.startswith("boto3: resolved 0.0.3, below the floor") for p in problems), problems


def test_downgrades_are_listed():
    old = lock.parse_lock(SAMPLE)
    new = lock.parse_lock(SAMPLE.replace("alpha==2.0", "alpha==1.9"))
    assert lock.check_no_downgrade(old, new) == ["alpha: 2.0 -> 1.9"]
    assert lock.check_no_downgrade(new, old) == []


def test_a_distribution_no_layer_needs_is_rejected(layer_config):
    entries = lock.read_lock(layer_config)
    entries["stray"] = lock.LockEntry("stray", "1.0", ["sha256:" + "d" * 64])
    with pytest.raises(BuildError, match="no layer needs.*stray"):
        lock.assign_layers(layer_config, entries)


def test_requirement_lines_pin_with_hashes(layer_config):
    entry = lock.read_lock(layer_config)["numpy"]
    line = entry.requirement_line()
    assert line.startswith(f"numpy=={entry.version} --hash=sha256:")
    assert Version(entry.version) >= Version(layer_config.floors["numpy"])
