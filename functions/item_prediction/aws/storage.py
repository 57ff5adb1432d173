"""The AWS adapter: S3 objects and DynamoDB items, and nothing else.

boto3 finds its endpoint in ``AWS_ENDPOINT_URL`` when set (a local emulator), so nothing here
names one.
"""

from __future__ import annotations

import decimal
import gzip
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

import boto3
from boto3.dynamodb.types import DYNAMODB_CONTEXT

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

BATCH_ITEMS = 25  # DynamoDB's limit of put requests in one BatchWriteItem
# BatchWriteItem requests in flight at once. A request to DynamoDB waits ~10-30 ms on the network,
# so a shard's ~16 batches (390 series) go out in 2 rounds instead of 16; 8 stays inside botocore's
# pool of 10 connections per client (more threads would wait for a connection), and beyond a few
# threads the client's own work (one core, the GIL) is what remains.
WRITERS = 8
WRITE_ATTEMPTS = 8  # BatchWriteItem calls per batch before its unprocessed items are an error
BACKOFF_SECONDS = 0.05  # the wait before the first retry of unprocessed items; doubled each retry,
BACKOFF_CAP_SECONDS = 1.6  # up to this: at most ~4.8 s of waiting per batch


class ItemsNotWritten(RuntimeError):
    """Items DynamoDB still returned as unprocessed after :data:`WRITE_ATTEMPTS` calls (throttled)."""


class UnwritableValue(TypeError):
    """An item attribute of a type :meth:`Storage.put_items` does not write."""


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

    def __init__(self, bucket: str, table: str, *, s3=None, dynamodb=None, dynamodb_client=None) -> None:
        self.bucket = bucket
        self.table_name = table
        self._s3 = s3
        self._dynamodb = dynamodb
        self._dynamodb_client = dynamodb_client

    def connect(self, *, item_writes: bool = False) -> None:
        """Make the S3 client and the DynamoDB resource now (and the low-level client of
        :meth:`put_items` with ``item_writes``) rather than at their first use: the first client of
        a process costs about 130 ms of botocore loading its service models (python3.13)."""
        self.s3, self.table  # noqa: B018 - made by the properties
        if item_writes:
            self.dynamodb_client  # noqa: B018

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

    @property
    def dynamodb_client(self):
        """The low-level DynamoDB client of :meth:`put_items`: thread-safe (a resource is not),
        without the resource's serializer (items go out in DynamoDB's wire form, :func:`_wire_item`),
        with a connection per writer thread. botocore's parameter validation is off: it walked every
        attribute of every request (a fifth of the client's CPU), checking shapes :func:`_wire_item`
        makes by construction; DynamoDB still validates every request."""
        if self._dynamodb_client is None:
            from botocore.config import Config

            config = Config(max_pool_connections=WRITERS, parameter_validation=False)
            self._dynamodb_client = boto3.client("dynamodb", config=config)
        return self._dynamodb_client

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

    def get_json_if_any(self, key: str, default=None):
        """The JSON object at ``key``, or ``default`` when there is none: one GET, where a HEAD
        first (``exists``) costs a second round trip on every read of an object usually there."""
        try:
            return self.get_json(key)
        except self.s3.exceptions.NoSuchKey:
            return default

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

    def list_folders(self, prefix: str) -> list[str]:
        """The "folders" right below ``prefix`` (common prefixes up to the next ``/``), by name."""
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
        return sorted(found)

    def download(self, key: str, handle, *, version_id: str | None = None) -> str | None:
        """Copy an object (exactly ``version_id`` when given) into an open binary file; the version read.

        One GET streamed to the file, not boto3's transfer manager (``download_fileobj``): that one
        sends a HEAD first and starts a thread pool, 4-9 ms more per object against the emulator and a
        round trip more on S3, for ranged parallel GETs that objects of this pipeline's size
        (features, priors, parts of at most a few hundred MB) do not need."""
        body, version, _ = self.open(ObjectRef(self.bucket, key, version_id))
        shutil.copyfileobj(body, handle, 1 << 20)
        handle.seek(0)
        return version

    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that GETs ``key`` for ``seconds`` without credentials (signed with the caller's, SigV4)."""
        from botocore.config import Config

        signer = boto3.client("s3", config=Config(signature_version="s3v4"))
        return signer.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds)

    def put_parquet(self, key: str, frame: pd.DataFrame, *, dictionary: tuple[str, ...] = ()) -> str | None:
        """Write a frame as one Parquet object (see :mod:`.columnar`; ``dictionary``: text columns
        written dictionary-encoded); returns its VersionId."""
        with tempfile.TemporaryFile() as handle:
            columnar.write_frame(frame, handle, dictionary=dictionary)
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
        """Write items, returning how many were given; a re-run with the same keys overwrites them,
        never duplicates. Of items sharing a key (``pk``, ``sk``) the last is written (BatchWriteItem
        refuses a key twice in one request). The items go out in batches of :data:`BATCH_ITEMS`,
        :data:`WRITERS` BatchWriteItem requests at a time (each waits on the network), in DynamoDB's
        wire form made here (:func:`_wire_item`: floats as the Decimal of their shortest repr, lists,
        None); a type it does not write is refused (:class:`UnwritableValue`) before any write.
        Unprocessed items are sent again after an exponential backoff, and are an error
        (:class:`ItemsNotWritten`) after :data:`WRITE_ATTEMPTS` calls. A series item's forecast is
        one string (:mod:`.series_item`), so there is little to convert."""
        latest, count = {}, 0
        for item in items:
            latest[(item["pk"], item["sk"])] = item
            count += 1
        wire = [{"PutRequest": {"Item": _wire_item(item)}} for item in latest.values()]
        batches = [wire[start : start + BATCH_ITEMS] for start in range(0, len(wire), BATCH_ITEMS)]
        write = partial(_write_batch, self.dynamodb_client, self.table_name)  # the client made here, once
        if len(batches) <= 1:
            for batch in batches:
                write(batch)
            return count
        with ThreadPoolExecutor(min(WRITERS, len(batches))) as pool:
            for _ in pool.map(write, batches):
                pass  # the first failure is raised here
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


def _write_batch(client, table: str, requests: list[dict]) -> None:
    """One BatchWriteItem of ``requests``, its unprocessed items sent again after a backoff."""
    delay = BACKOFF_SECONDS
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        answer = client.batch_write_item(RequestItems={table: requests})
        requests = answer.get("UnprocessedItems", {}).get(table)
        if not requests:
            return
        if attempt < WRITE_ATTEMPTS:
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_CAP_SECONDS)
    raise ItemsNotWritten(
        f"{len(requests)} item(s) still unprocessed by DynamoDB after {WRITE_ATTEMPTS} BatchWriteItem calls"
        " (throttled or failing)"
    )


def _wire_item(item: dict) -> dict:
    """An item in DynamoDB's attribute-value form, as the resource's serializer makes it from the
    item's :func:`_decimals` (the same values; a third of the serializer's time, and no walk of the
    request by the resource's transformation)."""
    return {name: _wire(value, name) for name, value in item.items()}


def _wire(value, name: str) -> dict:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _wire_number(value, name)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list | tuple):
        return {"L": [_wire(element, name) for element in value]}
    kind = type(value).__name__
    raise UnwritableValue(f"attribute {name!r} is a {kind}; put_items writes str, int, float, Decimal, bool, None and lists")


def _wire_number(value, name: str) -> str:
    """A number's text as DynamoDB takes it: floats as the Decimal of their shortest repr, at most
    38 significant digits (DYNAMODB_CONTEXT refuses more), finite."""
    try:
        number = DYNAMODB_CONTEXT.create_decimal(_decimal(value))
    except decimal.DecimalException:
        raise UnwritableValue(f"attribute {name!r} is {value}: more than DynamoDB's 38 significant digits") from None
    if not number.is_finite():
        raise UnwritableValue(f"attribute {name!r} is {number}; DynamoDB takes finite numbers only")
    return str(number)


def from_env() -> Storage:
    return Storage(os.environ.get("BUCKET_NAME", ""), os.environ.get("TABLE_NAME", ""))
