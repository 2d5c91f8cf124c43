"""File storage: a folder on local disk (embedded mode) or an S3-compatible bucket (production).

Both backends take a key (a relative path we choose, never a user's file name) and store bytes
from a stream, returning the sha256 so callers can record exactly what was stored.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from flask import current_app

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
CHUNK = 1024 * 1024


class StorageError(Exception):
    pass


class StorageUnavailable(StorageError):
    """The storage could not be written (disk, permissions, S3 unreachable or refusing): nothing was
    stored, so the caller records nothing that points at the file."""


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or ".." in key.split("/") or "//" in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    url: str

    def put(self, key: str, stream: BinaryIO) -> str: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def check(self) -> None: ...


class LocalStorage:
    """Files under one folder; writes go to a temporary file first so readers never see half a file."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, stream: BinaryIO) -> str:
        path = self._path(key)
        digest = hashlib.sha256()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror or exc}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest()

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"no stored file {key!r}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def check(self) -> None:
        """Write, read back and remove a probe file of this call's own (a shared name made concurrent
        health probes delete each other's file and answer 503)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=self.root, prefix=".healthz-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(b"ok")
            if Path(probe).read_bytes() != b"ok":
                raise StorageError("storage did not read back what was written")
        finally:
            Path(probe).unlink(missing_ok=True)
        if not shutil.disk_usage(self.root).free:
            raise StorageError("storage disk is full")


class S3Storage:
    """Objects in an S3 bucket under a prefix; S3_ENDPOINT_URL selects an S3-compatible server."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client=None):
        import boto3  # slow to import: only processes that use S3 pay for it (botocore below too)

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, stream: BinaryIO) -> str:
        # Hash while spooling to a temporary file so the upload is streamed and the sha256 is exact.
        digest = hashlib.sha256()
        with tempfile.TemporaryFile() as spool:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            from botocore.exceptions import BotoCoreError, ClientError  # with boto3, loaded lazily above

            try:
                self.client.upload_fileobj(
                    spool, self.bucket, self._key(key), ExtraArgs={"Metadata": {"sha256": digest.hexdigest()}}
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable(f"cannot write to {self.url}: {exc}") from exc
        return digest.hexdigest()

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            raise StorageError(f"no stored file {key!r}: {exc}") from exc
        return obj["Body"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return False
        return True

    def check(self) -> None:
        # Read-only: no object is written, so concurrent probes cannot collide.
        self.client.head_bucket(Bucket=self.bucket)


def storage_from_url(url: str, endpoint_url: str | None = None) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(parsed.path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError("STORAGE_URL s3://bucket/prefix needs a bucket name")
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=endpoint_url)
    raise StorageError(f"unsupported STORAGE_URL scheme {parsed.scheme!r} (use file:// or s3://)")


def init_app(app) -> None:
    app.extensions["storage"] = storage_from_url(app.config["STORAGE_URL"], app.config["S3_ENDPOINT_URL"])


def get_storage() -> Storage:
    return current_app.extensions["storage"]
