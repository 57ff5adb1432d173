"""Dataset names, output keys and event keys: the naming rules of ingest, without AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from item_prediction.aws.events import is_lifecycle_expiration, object_ref
from item_prediction.aws.settings import DatasetNameError, Settings, validate_dataset_name
from item_prediction.domain import schema
from item_prediction.steps import shard_store
from item_prediction.steps import validate as validate_step

EVENTS = Path(__file__).resolve().parents[3] / "events"
SETTINGS = Settings(bucket="b", table="t")


@pytest.mark.parametrize(
    ("key", "dataset"),
    [
        ("raw/sales/2024/jan.csv", "sales"),
        ("raw/jan.csv", "default"),
        ("raw/A-b_9/x.csv", "A-b_9"),
        ("raw/" + "d" * 64 + "/x.csv", "d" * 64),
    ],
)
def test_dataset_of_a_key(key, dataset):
    assert SETTINGS.dataset_of(key) == dataset


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("raw/../x.csv", "'..'"),
        ("raw/a b/x.csv", "'a b'"),
        ("raw//x.csv", "''"),
        ("raw/" + "d" * 65 + "/x.csv", "'" + "d" * 65 + "'"),
        ("raw/caf\u00e9/x.csv", "'caf\u00e9'"),
        ("raw/a#b/x.csv", "'a#b'"),
    ],
)
def test_a_dataset_name_outside_the_pattern_is_refused_with_one_line(key, shown):
    with pytest.raises(DatasetNameError) as error:
        SETTINGS.dataset_of(key)
    message = str(error.value)
    assert (
        message == f"dataset name {shown} is not allowed: use 1 to 64 of A-Z a-z 0-9 _ - "
        f"(files directly under raw/ are dataset 'default')"
    )
    assert isinstance(error.value, ValueError) and "\n" not in message


def test_the_default_folder_is_reserved():
    with pytest.raises(
        DatasetNameError, match="'default' is not allowed as a folder: it is reserved for the files directly under raw/"
    ):
        SETTINGS.dataset_of("raw/default/x.csv")


def test_the_argument_check_of_the_main_job_uses_the_same_rule():
    assert validate_dataset_name("sales_2024-eu") == "sales_2024-eu" and schema.DATASET_PATTERN == r"^[A-Za-z0-9_-]{1,64}$"
    for bad in ("..", "a/b", "", "x\n", "a" * 65):
        with pytest.raises(DatasetNameError, match="is not allowed"):
            validate_dataset_name(bad)


def _part_key(output: dict) -> str:
    """The upload's part of shard 3 of 4 (every part key differs from another upload's the same way)."""
    dataset = output["report_key"].split("/")[1]
    return shard_store.part_key(SETTINGS, dataset, output["relative"], 4, 3)


def test_output_keys_keep_the_whole_relative_key():
    keys = [
        _part_key(validate_step.output_keys(SETTINGS, SETTINGS.dataset_of(key), key)) for key in ("raw/sales/jan.csv", "raw/jan")
    ]
    assert keys == ["validated/sales/n=4/shard=00003/jan.csv.parquet", "validated/default/n=4/shard=00003/jan.parquet"]
    with pytest.raises(ValueError, match="not in dataset 'other'"):
        validate_step.output_keys(SETTINGS, "other", "raw/sales/jan.csv")


def test_files_that_once_shared_a_stem_have_distinct_outputs():
    keys = [
        "raw/sales/jan.csv",
        "raw/sales/jan.csv.gz",
        "raw/sales/jan.CSV",
        "raw/sales/jan.txt",
        "raw/sales/jan",
        "raw/jan.csv",
        "raw/x/jan.csv",
    ]
    outputs = [validate_step.output_keys(SETTINGS, SETTINGS.dataset_of(key), key) for key in keys]
    for kind in ("index_key", "quarantine_key", "report_key"):
        assert len({output[kind] for output in outputs}) == len(keys), kind
    assert len({_part_key(output) for output in outputs}) == len(keys)


_segment = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), max_size=6)
_raw_keys = st.one_of(
    st.builds(lambda name: f"raw/{name}", _segment.filter(bool)),
    st.builds(
        lambda ds, parts: f"raw/{ds}/" + "/".join(parts),
        st.from_regex(schema.DATASET_PATTERN, fullmatch=True),
        st.lists(_segment, min_size=1, max_size=3),
    ),
)


@given(st.lists(_raw_keys, min_size=2, max_size=8, unique=True))
def test_the_output_key_mapping_is_injective(keys):
    admitted = []
    for key in keys:
        try:
            admitted.append((key, SETTINGS.dataset_of(key)))
        except DatasetNameError:
            continue  # raw/default/...: refused, it has no outputs
    for kind in ("index_key", "quarantine_key", "report_key"):
        outputs = {validate_step.output_keys(SETTINGS, dataset, key)[kind] for key, dataset in admitted}
        assert len(outputs) == len(admitted), kind
    parts = {_part_key(validate_step.output_keys(SETTINGS, dataset, key)) for key, dataset in admitted}
    assert len(parts) == len(admitted)


def _eventbridge(name: str, key: str) -> dict:
    event = json.loads((EVENTS / name).read_text())
    event["detail"]["object"]["key"] = key
    return event


@pytest.mark.parametrize(
    ("sent", "decoded"),
    [
        ("raw/sales/jan+export.csv", "raw/sales/jan export.csv"),
        ("raw/sales/a%2Bb.csv", "raw/sales/a+b.csv"),
        ("raw/sales/caf%C3%A9.csv", "raw/sales/caf\u00e9.csv"),
    ],
)
def test_eventbridge_keys_are_url_decoded(sent, decoded):
    assert object_ref(_eventbridge("object_created.json", sent)).key == decoded
    assert object_ref(_eventbridge("object_deleted.json", sent)).key == decoded


def test_the_size_of_an_upload_and_a_deletion_are_kept_on_the_reference():
    created = object_ref(json.loads((EVENTS / "object_created.json").read_text()))
    deleted = object_ref(json.loads((EVENTS / "object_deleted.json").read_text()))
    assert (created.size, created.deleted) == (102400, False)
    assert (deleted.key, deleted.version_id, deleted.deleted) == (
        "raw/sales/2024-01 export.csv",
        "1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF",
        True,
    )
    assert not is_lifecycle_expiration(json.loads((EVENTS / "object_deleted.json").read_text()))
    expired = json.loads((EVENTS / "object_deleted.json").read_text())
    expired["detail"]["reason"] = "Lifecycle Expiration"
    assert is_lifecycle_expiration(expired)
    assert json.loads((EVENTS / "revalidate_object.json").read_text())["force"] is True
