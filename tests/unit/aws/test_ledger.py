"""The ingest ledger and the per-dataset lease against a moto DynamoDB table."""

from __future__ import annotations

import boto3
import pytest
from item_prediction.aws import ledger

from tests.conftest import create_predictions_table

NOW = 1_700_000_000


@pytest.fixture
def table(moto_aws):
    create_predictions_table("t")  # the ledger's items live in the predictions table
    return boto3.resource("dynamodb", region_name="us-east-1").Table("t")


def _item(table, sk: str) -> dict | None:
    return table.get_item(Key={"pk": "DS#sales", "sk": sk}).get("Item")


def test_a_source_version_is_claimed_once(table):
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW) is True
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 1) is False  # the duplicate event
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v2", now=NOW + 1) is True  # a new upload of the key
    assert ledger.claim_source(table, "other", "raw/sales/a.csv", "v1", now=NOW + 1) is True  # datasets are apart
    ledger.finish_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 2)
    item = _item(table, "SOURCE#raw/sales/a.csv#v1")
    assert (item["status"], item["validated_at"], "stale_at" in item) == ("validated", NOW + 2, False)
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 10_000) is False  # done: never stale
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 3, force=True) is True


def test_an_unfinished_claim_is_taken_again_once_its_invocation_surely_ended(table):
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW, busy_seconds=60)
    assert not ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 60, busy_seconds=60)
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 61, busy_seconds=60)
    ledger.forget_source(table, "sales", "raw/sales/a.csv", "v1")
    assert ledger.claim_source(table, "sales", "raw/sales/a.csv", "v1", now=NOW + 62)


def test_the_lease_admits_one_owner_until_released_or_expired(table):
    ledger.acquire_lease(table, "sales", "raw/sales/a.csv#v1", NOW)
    ledger.acquire_lease(table, "sales", "raw/sales/a.csv#v1", NOW + 5)  # the same run again (a retry)
    ledger.acquire_lease(table, "other", "raw/other/a.csv#v1", NOW + 5)  # another dataset
    with pytest.raises(ledger.DatasetBusy, match=r"dataset 'sales' is busy: run raw/sales/a.csv#v1 holds it"):
        ledger.acquire_lease(table, "sales", "raw/sales/b.csv#v7", NOW + 6)
    assert ledger.release_lease(table, "sales", "raw/sales/b.csv#v7") is False  # not its lease: left alone
    assert _item(table, "LEASE")["owner"] == "raw/sales/a.csv#v1"
    assert ledger.release_lease(table, "sales", "raw/sales/a.csv#v1") is True
    assert ledger.release_lease(table, "sales", "raw/sales/a.csv#v1") is False  # already gone: no error
    ledger.acquire_lease(table, "sales", "raw/sales/b.csv#v7", NOW + 7)
    with pytest.raises(ledger.DatasetBusy):
        ledger.acquire_lease(table, "sales", "backfill#sales", NOW + 7 + ledger.LEASE_SECONDS)
    ledger.acquire_lease(table, "sales", "backfill#sales", NOW + 8 + ledger.LEASE_SECONDS)  # expired: taken over
    lease = _item(table, "LEASE")
    assert (lease["owner"], lease["expires_at"]) == ("backfill#sales", NOW + 8 + 2 * ledger.LEASE_SECONDS)
    assert ledger.DatasetBusy.__name__ == "DatasetBusy"  # Lambda's errorType, which the state machine retries on


def test_the_lease_owner_names_the_run():
    assert ledger.lease_owner({"source_key": "raw/s/a.csv", "source_version": "v1"}, "s") == "raw/s/a.csv#v1"
    assert ledger.lease_owner({"source_key": "raw/s/a.csv", "source_version": None}, "s") == "raw/s/a.csv#null"
    assert ledger.lease_owner({"dataset": "s"}, "s") == "backfill#s"
