"""The ingest ledger and the per-dataset lease, as DynamoDB items next to the predictions.

* Ledger (``pk = DS#<dataset>``, ``sk = SOURCE#<source key>#<version or null>``): one item per
  upload version, claimed by DataValidation with a conditional put before it validates, so a
  duplicate event (S3 and EventBridge deliver at least once) is a no-op. A claim whose
  validation died without a word (a timeout, the memory limit) goes stale when that invocation
  surely ended, so the state machine's retry can claim it again; an error releases it at once.
* Lease (``pk = DS#<dataset>``, ``sk = LEASE``): one run per dataset at a time, from
  FeatureEngineering to the end of Predictions. Held by ``owner`` (``<source key>#<version>``, or
  ``backfill#<dataset>``) until ``expires_at`` (epoch seconds, also the table's TTL attribute).

Every function takes the boto3 ``Table``; ``now`` is epoch seconds (passed in, so tests set it).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

LEASE_SECONDS = 1860  # FeatureEngineering's and Predictions' timeouts (900 s each) and a minute
LEASE_SK = "LEASE"
VALIDATING, VALIDATED = "validating", "validated"


class DatasetBusy(Exception):
    """Another run holds the dataset's lease (the state machine retries on this errorType)."""


def dataset_pk(dataset: str) -> str:
    return f"DS#{dataset}"


def source_sk(key: str, version: str | None) -> str:
    return f"SOURCE#{key}#{version or 'null'}"


def lease_owner(event: dict, dataset: str) -> str:
    """The run's owner name: its source object and version, or ``backfill#<dataset>``."""
    if event.get("source_key"):
        return f"{event['source_key']}#{event.get('source_version') or 'null'}"
    return f"backfill#{dataset}"


def _conditional_put(table, item: dict, condition: str, values: dict, names: dict) -> dict | None:
    """Put ``item`` if ``condition`` holds: None when it did, else the item in the way (its
    attributes as plain strings; returned by the failed put itself, so no read is needed)."""
    try:
        table.put_item(
            Item=item,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ExpressionAttributeNames=names,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return None
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            old = exc.response.get("Item") or {}
            return {name: next(iter(value.values()), None) if isinstance(value, dict) else value for name, value in old.items()}
        raise


def claim_source(
    table, dataset: str, key: str, version: str | None, *, now: int, busy_seconds: int = 900, force: bool = False
) -> bool:
    """Claim an upload version for validation: False when it was already claimed (a duplicate).

    ``busy_seconds``: how long the claiming invocation may still run; after that an unfinished
    claim is stale and may be taken again. ``force`` claims whatever is there (a manual re-run).
    """
    item = {
        "pk": dataset_pk(dataset),
        "sk": source_sk(key, version),
        "status": VALIDATING,
        "claimed_at": now,
        "stale_at": now + busy_seconds,
    }
    if force:
        table.put_item(Item=item)
        return True
    condition = "attribute_not_exists(pk) OR (#status = :validating AND stale_at < :now)"
    return _conditional_put(table, item, condition, {":validating": VALIDATING, ":now": now}, {"#status": "status"}) is None


def finish_source(table, dataset: str, key: str, version: str | None, *, now: int, status: str = VALIDATED) -> None:
    """Mark a claimed upload as done (``validated_at``): from now on its events are duplicates."""
    table.update_item(
        Key={"pk": dataset_pk(dataset), "sk": source_sk(key, version)},
        UpdateExpression="SET #status = :status, validated_at = :now REMOVE stale_at",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": status, ":now": now},
    )


def forget_source(table, dataset: str, key: str, version: str | None) -> None:
    """Drop a claim whose validation failed, so that a retry may validate the upload."""
    table.delete_item(Key={"pk": dataset_pk(dataset), "sk": source_sk(key, version)})


def acquire_lease(table, dataset: str, owner: str, now: int) -> None:
    """Take the dataset's lease for ``owner`` (again, if it holds it already); DatasetBusy when a
    live lease belongs to another run."""
    item = {"pk": dataset_pk(dataset), "sk": LEASE_SK, "owner": owner, "acquired_at": now, "expires_at": now + LEASE_SECONDS}
    condition = "attribute_not_exists(pk) OR expires_at < :now OR #owner = :me"
    holder = _conditional_put(table, item, condition, {":now": now, ":me": owner}, {"#owner": "owner"})
    if holder is not None:
        raise DatasetBusy(
            f"dataset {dataset!r} is busy: run {holder.get('owner', '?')} holds it until epoch {holder.get('expires_at', '?')}; "
            "this run waits for it (the state machine retries)"
        )


def release_lease(table, dataset: str, owner: str) -> bool:
    """Give the lease back if ``owner`` holds it; False (no error) when it is gone or another's."""
    try:
        table.delete_item(
            Key={"pk": dataset_pk(dataset), "sk": LEASE_SK},
            ConditionExpression="#owner = :me",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":me": owner},
        )
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
