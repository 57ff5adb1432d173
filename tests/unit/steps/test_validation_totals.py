"""The report's "rows in" totals over a dataset's validation reports: read from the reports that are
new or rewritten since the last run, the others' counts kept by ETag, always the reports' own sums."""

from __future__ import annotations

import boto3
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import Storage
from item_prediction.steps import report

BUCKET = "totals-bucket"
SETTINGS = Settings(BUCKET, "unused-table")
PREFIX = f"{SETTINGS.reports_prefix}sales/"


def former_totals(storage: Storage) -> dict:
    """The totals as the code before the cache summed them: every report read, every run."""
    keys = [key for key in storage.list_keys(PREFIX) if key.endswith(".validation.json")]
    totals = {"rows_in": 0, "rows_clean": 0, "rows_quarantined": 0, "rules": {}, "files": len(keys)}
    for key in keys:
        document = storage.get_json(key)
        for count in ("rows_in", "rows_clean", "rows_quarantined"):
            totals[count] += int(document.get(count) or 0)
        for reason, rows in (document.get("rules") or {}).items():
            totals["rules"][reason] = totals["rules"].get(reason, 0) + int(rows)
    return totals


class Counting(Storage):
    """A Storage that records which objects' bodies it read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def get_json(self, key: str) -> dict:
        self.read.append(key)
        return super().get_json(key)


@pytest.fixture
def storage(moto_aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return Counting(BUCKET, "unused-table", s3=s3)


def upload_report(storage: Storage, name: str, rows_in: int, rules: dict | None = None) -> str:
    quarantined = sum((rules or {}).values())
    document = {"rows_in": rows_in, "rows_clean": rows_in - quarantined, "rows_quarantined": quarantined, "rules": rules or {}}
    return storage.put_json(f"{PREFIX}{name}.validation.json", document)


def totals(storage: Counting) -> tuple[dict, list[str]]:
    storage.read.clear()
    result = report.validation_totals(storage, SETTINGS, "sales")
    return result, [key for key in storage.read if key.endswith(".validation.json")]


def test_a_second_run_reads_no_report_and_gives_the_same_totals(storage):
    for week in range(5):
        upload_report(storage, f"week-{week}.csv", 100 + week, {"negative quantity": week} if week % 2 else None)
    storage.put_json(f"{PREFIX}runs/r1.json", {"rows_in": 10**6})  # a run report: not an upload's
    first, read_first = totals(storage)
    assert first == former_totals(storage) and len(read_first) == 5
    second, read_second = totals(storage)
    assert second == first and read_second == []


def test_a_rewritten_deleted_or_new_report_is_counted_as_it_now_is(storage):
    for week in range(4):
        upload_report(storage, f"week-{week}.csv", 100, {"bad date": 1})
    totals(storage)
    rewritten = upload_report(storage, "week-1.csv", 70, {"bad date": 5, "duplicate key": 2})  # a re-upload
    storage.delete(f"{PREFIX}week-2.csv.validation.json")  # a retracted upload's report
    new = upload_report(storage, "week-4.csv", 40)
    after, read = totals(storage)
    assert after == former_totals(storage) and after["files"] == 4
    assert sorted(read) == sorted([rewritten, new])


@pytest.mark.parametrize(
    "cache",
    [b"not json", b'{"format": 2, "reports": {}}', b"[1, 2]", None],
    ids=["not JSON", "unknown format", "not an object", "malformed entry"],
)
def test_a_cache_that_cannot_be_used_is_rebuilt_from_the_reports(storage, cache):
    keys = [upload_report(storage, f"week-{week}.csv", 10 * week, {"bad date": week}) for week in range(3)]
    totals(storage)
    cache_key = f"{PREFIX}{report.COUNTS_CACHE}"
    if cache is None:  # one entry damaged: its etag kept, its counts gone
        document = storage.get_json(cache_key)
        document["reports"][keys[0]] = {"etag": document["reports"][keys[0]]["etag"], "rows_in": "many"}
        storage.put_json(cache_key, document)
    else:
        storage.put_bytes(cache_key, cache)
    rebuilt, read = totals(storage)
    assert rebuilt == former_totals(storage)
    assert sorted(read) == (sorted(keys[:1]) if cache is None else sorted(keys))
