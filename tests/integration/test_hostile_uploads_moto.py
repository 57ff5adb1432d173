"""Hostile uploads through the DataValidation handler on moto: refused as a whole, nothing kept, a metric."""

from __future__ import annotations

import gzip
import json

from .conftest import BUCKET, FakeContext, object_created, read_json


def emitted_metrics(capsys) -> dict:
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return {
        name: blob[name]
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for name in (m["Name"] for m in directive["Metrics"])
    }


def test_a_bomb_is_refused_with_its_reason_and_leaves_no_rows(aws, capsys, monkeypatch):
    from data_validation.app import lambda_handler as validate

    monkeypatch.setenv("MAX_STREAM_BYTES", str(1 << 20))
    rows = "date,item_id,store_id,quantity\n" + "2024-01-01,A,S1,1\n" * 200_000  # 3.6 MB inflated, a few KB stored
    aws.put_object(Bucket=BUCKET, Key="raw/sales/bomb.csv.gz", Body=gzip.compress(rows.encode()))
    result = validate(object_created("raw/sales/bomb.csv.gz"), FakeContext())
    assert result["file_reason"] == "decompressed_too_large" and result["skipped"] is True
    assert result["rows"] == {"in": 0, "clean": 0, "quarantined": 0}
    assert result["shards_written"] == [] and "quarantine_key" not in result
    listed = aws.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(item["Key"] for item in listed) == ["raw/sales/bomb.csv.gz", result["report_key"]]
    report = read_json(aws, result["report_key"])
    assert report["file_reason"] == "decompressed_too_large" and "MAX_STREAM_BYTES" in report["file_detail"]
    assert emitted_metrics(capsys).get("FilesQuarantined") == [1.0]


def test_the_event_size_is_checked_before_reading(aws, capsys, monkeypatch):
    from data_validation.app import lambda_handler as validate

    monkeypatch.setenv("MAX_OBJECT_BYTES", "1000")
    body = b"date,item_id,quantity\n" + b"2024-01-01,A,1\n" * 400
    aws.put_object(Bucket=BUCKET, Key="raw/sales/small.csv", Body=body)
    event = object_created("raw/sales/small.csv")
    event["detail"]["object"]["size"] = len(body)  # what the event says, before any byte is read
    result = validate(event, FakeContext())
    assert result["file_reason"] == "too_large"
    assert read_json(aws, result["report_key"])["input"]["bytes"] == 0


def test_a_clean_file_emits_no_files_quarantined_metric(aws, capsys):
    from data_validation.app import lambda_handler as validate

    aws.put_object(Bucket=BUCKET, Key="raw/sales/ok.csv", Body=b"date,item_id,quantity\n2024-01-01,A,1\n")
    result = validate(object_created("raw/sales/ok.csv"), FakeContext())
    assert result["file_reason"] is None and result["rows"]["clean"] == 1
    assert "FilesQuarantined" not in emitted_metrics(capsys)
