"""minio: an S3 bucket, through the MinIO client library.

credentials: endpoint ("host:port"), access_key, secret_key, bucket; optional secure
(default true) and region. Success when the bucket exists; writable when a probe object
can be written under base_path and removed again.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from minio import Minio
from minio.error import S3Error
from minio.helpers import check_bucket_name
from urllib3.exceptions import HTTPError

from storage.providers import Outcome, failed
from storage.providers.remote import pool, transport_failure

# S3 error codes that mean "these keys are not accepted".
REFUSED_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


def check(base_path: str | None, credentials: dict[str, Any], timeout: float) -> Outcome:
    endpoint, bucket = str(credentials["endpoint"]), str(credentials["bucket"])
    try:
        client = Minio(
            endpoint,
            access_key=str(credentials["access_key"]),
            secret_key=str(credentials["secret_key"]),
            secure=_flag(credentials.get("secure", True)),
            region=credentials.get("region") or None,
            http_client=pool(timeout),
        )
        check_bucket_name(bucket)
    except ValueError as exc:
        what = "bucket name" if "bucket" in str(exc).lower() else "endpoint"
        return failed(f"Invalid {what} ({exc}).")
    try:
        if not client.bucket_exists(bucket):
            return failed(f"Bucket {bucket!r} does not exist on {endpoint}.")
    except S3Error as exc:
        return _refused(exc, endpoint, bucket)
    except HTTPError as exc:
        return transport_failure(exc, endpoint, timeout)
    key = "/".join(filter(None, [(base_path or "").strip("/"), f".arv-test-{uuid.uuid4().hex}"]))
    try:
        client.put_object(bucket, key, io.BytesIO(b""), 0)
    except S3Error as exc:
        return Outcome(True, f"Bucket {bucket!r} exists; writing to it was refused ({exc.code}).", False)
    except HTTPError as exc:
        return transport_failure(exc, endpoint, timeout)
    try:
        client.remove_object(bucket, key)
    except (S3Error, HTTPError) as exc:
        reason = exc.code if isinstance(exc, S3Error) else type(exc).__name__
        return failed(f"Wrote {key!r} to bucket {bucket!r} but could not remove it ({reason}).")
    return Outcome(True, f"Bucket {bucket!r} on {endpoint} is writable.", True)


def _refused(exc: S3Error, endpoint: str, bucket: str) -> Outcome:
    if exc.code in REFUSED_KEYS:
        return failed(f"{endpoint} refused the access key or secret key ({exc.code}).")
    return failed(f"{endpoint} answered {exc.code} for bucket {bucket!r}.")


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)
