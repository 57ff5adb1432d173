"""The AWS adapter: S3 objects and DynamoDB items, and nothing else.

boto3 finds its endpoint in ``AWS_ENDPOINT_URL`` when set (a local emulator), so nothing here
names one.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import boto3

from ..domain import csv_safety
from . import columnar

if TYPE_CHECKING:  # pandas is imported where frames are read: the API function has no pandas layer
    import pandas as pd


@dataclass(frozen=True)
class ObjectRef:
    """An S3 object as an event names it."""

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    deleted: bool = False  # an "Object Deleted" event: the upload was removed


# Level 1: a shard's forecast part (5,460 rows) compresses in 3.4 ms instead of 16.9 ms at level 6,
# 13% larger (211 KB against 187 KB before gzip's 564 KB); the write is billed time, the bytes cost nothing.
GZIP_LEVEL = 1


class CsvGzipWriter:
    """Collects DataFrames into one gzip CSV in a temporary file (bounded memory), deterministic bytes.

    Float columns whose values are all whole numbers are written as integers (``3``, not
    ``3.0``): the same values, fewer bytes to format and compress. With ``escape_formulas`` (files
    for people), text cells and column names a spreadsheet would run as a formula are escaped
    (:mod:`item_prediction.domain.csv_safety`).
    """

    def __init__(self, *, escape_formulas: bool = False) -> None:
        self._escape = escape_formulas
        self._file = tempfile.TemporaryFile()
        self._gzip = gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0, compresslevel=GZIP_LEVEL)
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._columns: list[str] | None = None
        self.rows = 0

    def __call__(self, frame: pd.DataFrame) -> None:
        frame = _whole_numbers_as_integers(frame)
        header = self._columns is None
        if header:
            self._columns = list(frame.columns)
        else:
            frame = frame.reindex(columns=self._columns)
        if self._escape:
            frame = csv_safety.escape_formulas(frame)
            header = header and csv_safety.escape_names(self._columns)
        frame.to_csv(self._text, index=False, header=header, lineterminator="\n")
        self.rows += len(frame)

    def finish(self) -> io.BufferedRandom:
        self._text.flush()
        self._text.detach()
        self._gzip.close()
        self._file.seek(0)
        return self._file


class Storage:
    """S3 and DynamoDB access for one bucket and one table."""

    def __init__(self, bucket: str, table: str, *, s3=None, dynamodb=None) -> None:
        self.bucket = bucket
        self.table_name = table
        self._s3 = s3
        self._dynamodb = dynamodb

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    @property
    def table(self):
        if self._dynamodb is None:
            self._dynamodb = boto3.resource("dynamodb")
        return self._dynamodb.Table(self.table_name)

    # -- S3 -------------------------------------------------------------------------------
    def open(self, ref: ObjectRef):
        """The object's body as a stream, with its version and size."""
        args = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            args["VersionId"] = ref.version_id
        response = self.s3.get_object(**args)
        return response["Body"], response.get("VersionId"), response.get("ContentLength")

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except self.s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def head(self, key: str) -> dict | None:
        """The current version's metadata (``VersionId``, ``ContentLength``...), or None when the key
        does not exist or its current version is a delete marker."""
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound", "405", "MethodNotAllowed"):
                return None
            raise

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def get_bytes(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_json(self, key: str) -> dict:
        return json.loads(self.get_bytes(key))

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return key

    def put_json(self, key: str, payload: dict) -> str:
        return self.put_bytes(
            key, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode(), "application/json"
        )

    def put_file(self, key: str, handle, content_type: str = "application/gzip") -> str:
        self.s3.upload_fileobj(handle, self.bucket, key, ExtraArgs={"ContentType": content_type})
        return key

    def put_file_version(self, key: str, handle, content_type: str = "application/gzip") -> str | None:
        """Write a file (one request, up to 5 GB) and return the VersionId it got (None unversioned)."""
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=handle, ContentType=content_type).get("VersionId")

    def list_keys(self, prefix: str) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def list_objects(self, prefix: str) -> list[dict]:
        """Every object under ``prefix``: ``key``, ``size``, ``last_modified`` (UTC datetime) and
        ``etag`` (the content's tag: the same bytes written again keep it), by key."""
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [
                {"key": item["Key"], "size": item["Size"], "last_modified": item["LastModified"], "etag": item.get("ETag")}
                for item in page.get("Contents", [])
            ]
        return sorted(found, key=lambda entry: entry["key"])

    def download(self, key: str, handle, *, version_id: str | None = None) -> None:
        """Copy an object (exactly ``version_id`` when given) into an open binary file.

        One GET streamed to the file, not boto3's transfer manager (``download_fileobj``): that one
        sends a HEAD first and starts a thread pool, 4-9 ms more per object against the emulator and a
        round trip more on S3, for ranged parallel GETs that objects of this pipeline's size
        (features, priors, parts of at most a few hundred MB) do not need."""
        body, _, _ = self.open(ObjectRef(self.bucket, key, version_id))
        shutil.copyfileobj(body, handle, 1 << 20)
        handle.seek(0)

    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that GETs ``key`` for ``seconds`` without credentials (signed with the caller's, SigV4)."""
        from botocore.config import Config

        signer = boto3.client("s3", config=Config(signature_version="s3v4"))
        return signer.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds)

    def put_parquet(self, key: str, frame: pd.DataFrame) -> str | None:
        """Write a frame as one Parquet object (see :mod:`.columnar`); returns its VersionId."""
        with tempfile.TemporaryFile() as handle:
            columnar.write_frame(frame, handle)
            handle.seek(0)
            return self.put_file_version(key, handle, columnar.CONTENT_TYPE)

    def put_part(self, key: str, part: columnar.PartWriter) -> str | None:
        """Finish a streamed part and upload it (one request, up to 5 GB); returns its VersionId.
        The local file stays (the caller removes it)."""
        with open(part.finish(), "rb") as handle:
            return self.put_file_version(key, handle, columnar.CONTENT_TYPE)

    def read_parquet(self, key: str, *, version_id: str | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """A Parquet object as a frame; exactly ``version_id`` when given."""
        with tempfile.TemporaryFile() as handle:
            self.download(key, handle, version_id=version_id)
            return columnar.read_frame(handle, columns=columns)

    def iter_parquet(
        self, key: str, *, version_id: str | None = None, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """A Parquet object one row group at a time (memory bounded by its largest row group).

        The object is downloaded to a temporary file first (local disk, not memory), removed
        when the iteration ends or the generator is closed."""
        with tempfile.TemporaryFile() as handle:
            self.download(key, handle, version_id=version_id)
            yield from columnar.iter_row_groups(handle, columns=columns)

    def read_csv(self, key: str, *, version_id: str | None = None, **kwargs) -> pd.DataFrame:
        """A CSV object (gzip when the key ends in .gz) as a frame; exactly ``version_id`` when given."""
        import pandas as pd  # here, not at the top: the API function has no pandas layer

        with tempfile.TemporaryFile() as handle:
            self.download(key, handle, version_id=version_id)
            return pd.read_csv(handle, compression="gzip" if key.endswith(".gz") else None, **kwargs)

    def write_csv(self, key: str, frame: pd.DataFrame, *, escape_formulas: bool = False) -> str:
        writer = CsvGzipWriter(escape_formulas=escape_formulas)
        writer(frame)
        with writer.finish() as handle:
            return self.put_file(key, handle)

    # -- DynamoDB -------------------------------------------------------------------------
    def put_items(self, items: Iterable[dict]) -> int:
        """Write items (BatchWriteItem, unprocessed items retried); a re-run with the same keys
        overwrites them, never duplicates. Floats become Decimals (:func:`_decimals`); a series
        item's forecast is one string (:mod:`.series_item`), so nothing of it is converted: a
        14-day series item takes about a third of the time its five number lists took against the
        emulator (a quarter of the client's own work)."""
        count = 0
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in items:
                batch.put_item(Item=_decimals(item))
                count += 1
        return count

    def put_item(self, item: dict) -> None:
        """Write one item (PutItem), replacing any with its key."""
        self.table.put_item(Item=_decimals(item))

    def get_item(self, key: dict) -> dict | None:
        """The item with ``key`` (GetItem, strongly consistent: a flip just made is seen), or None."""
        return self.table.get_item(Key=key, ConsistentRead=True).get("Item")


def _whole_numbers_as_integers(frame: pd.DataFrame) -> pd.DataFrame:
    import numpy as np  # here, not at the top: the API function's cold start never loads numpy

    converted = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype == "float64":
            array = values.to_numpy()
            known = array[~np.isnan(array)]
            if np.isfinite(known).all() and (np.abs(known) < 2**53).all() and (known == np.round(known)).all():
                converted[column] = values.astype("Int64")
    return frame.assign(**converted) if converted else frame


def _decimal(value):
    """A float as the Decimal of its shortest repr (DynamoDB takes no floats); lists element-wise."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_decimal(element) for element in value]
    return value


def _decimals(item: dict) -> dict:
    return {key: _decimal(value) for key, value in item.items()}


def from_env() -> Storage:
    return Storage(os.environ.get("BUCKET_NAME", ""), os.environ.get("TABLE_NAME", ""))
