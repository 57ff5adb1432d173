"""Storage reads of objects that may be missing: one GET, the default when there is none."""

import boto3
import pytest
from item_prediction.aws.storage import Storage


@pytest.fixture
def storage(moto_aws):
    boto3.client("s3").create_bucket(Bucket="bucket")
    return Storage("bucket", "table", s3=boto3.client("s3"))


def test_get_json_if_any_is_one_get_and_the_default_when_the_object_is_missing(storage):
    calls: list[str] = []
    storage.s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    storage.put_json("a.json", {"shard_count": 4})
    calls.clear()
    assert storage.get_json_if_any("a.json") == {"shard_count": 4} and calls == ["GetObject"]
    assert storage.get_json_if_any("missing.json") is None
    assert storage.get_json_if_any("missing.json", {}) == {}
    storage.delete("a.json")
    assert storage.get_json_if_any("a.json", {"gone": True}) == {"gone": True}


def test_get_json_if_any_does_not_hide_other_errors(storage):
    storage.put_bytes("broken.json", b"not json")
    with pytest.raises(ValueError):
        storage.get_json_if_any("broken.json")
    with pytest.raises(storage.s3.exceptions.NoSuchBucket):
        Storage("no-such-bucket", "table", s3=storage.s3).get_json_if_any("a.json")
