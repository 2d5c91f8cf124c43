"""File storage: local folder and S3 (against a real moto server process)."""

import hashlib
import io
import threading
import time

import pytest

from portal.core.storage import LocalStorage, S3Storage, StorageError, storage_from_url

CONTENT = b"Student ID,Amount\n1,100.00\n" * 100


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def test_local_put_returns_sha256_and_reads_back(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.put("uploads/1/original", io.BytesIO(CONTENT)) == _sha(CONTENT)
    with storage.open("uploads/1/original") as fh:
        assert fh.read() == CONTENT


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "", "a//b", "dir/..", "név.csv"])
def test_local_key_when_unsafe_is_refused(tmp_path, key):
    with pytest.raises(StorageError, match="invalid storage key"):
        LocalStorage(tmp_path).put(key, io.BytesIO(b"x"))


def test_local_open_when_missing_says_so(tmp_path):
    with pytest.raises(StorageError, match="no stored file 'missing'"):
        LocalStorage(tmp_path).open("missing")


def test_storage_url_when_unknown_scheme_explains():
    with pytest.raises(StorageError, match="unsupported STORAGE_URL scheme 'ftp'"):
        storage_from_url("ftp://host/x")


@pytest.fixture
def s3_storage(moto_endpoint, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"portal-{time.time_ns()}"
    client.create_bucket(Bucket=bucket)
    return storage_from_url(f"s3://{bucket}/files", endpoint_url=moto_endpoint)


def test_s3_put_returns_sha256_and_reads_back(s3_storage):
    assert isinstance(s3_storage, S3Storage)
    assert s3_storage.put("uploads/1/original", io.BytesIO(CONTENT)) == _sha(CONTENT)
    assert s3_storage.open("uploads/1/original").read() == CONTENT
    assert s3_storage.exists("uploads/1/original")


def test_s3_objects_live_under_prefix(s3_storage):
    s3_storage.put("a/b", io.BytesIO(b"x"))
    keys = [o["Key"] for o in s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket)["Contents"]]
    assert keys == ["files/a/b"]


def test_s3_check_when_bucket_missing_fails(moto_endpoint, s3_storage):
    missing = storage_from_url("s3://no-such-bucket-here/x", endpoint_url=moto_endpoint)
    with pytest.raises(Exception):  # noqa: B017  (botocore raises ClientError 404)
        missing.check()
    s3_storage.check()


def test_healthz_reports_s3_storage(app, client, s3_storage):
    app.extensions["storage"] = s3_storage
    body = client.get("/healthz").json
    assert body["checks"]["storage"] == {"ok": True, "backend": "s3"}


def test_local_check_when_run_concurrently_never_fails(tmp_path):
    storage = LocalStorage(tmp_path)
    errors = []

    def check_many():
        for _ in range(200):
            try:
                storage.check()
            except Exception as exc:  # noqa: BLE001  (any failure is what the test counts)
                errors.append(exc)

    threads = [threading.Thread(target=check_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []  # every probe file was removed
