"""minio: an S3 bucket, through the MinIO client library.

credentials: endpoint ("host:port"), access_key, secret_key, bucket; optional secure
(default true) and region. Success when the bucket exists; writable when a probe object
can be written under base_path and removed again.

Anyone who may store a connection chooses the endpoint, so the check must not be a way to
reach or tell apart what only this server can reach: the endpoint must resolve to an allowed
address (storage.addresses) before anything is sent, every connection goes to the
address checked, and whatever is not a well-formed S3 answer (no answer, a refused or closed
connection, TLS trouble, an HTTP answer without an S3 request id, a redirect, a body
over the cap) gets one message, NO_S3_ANSWER, that says nothing about what is there.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from minio import Minio
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name
from urllib3.exceptions import HTTPError

from storage.addresses import RefusedAddress, Unresolvable, secure_flag, split_endpoint
from storage.providers import Outcome, failed
from storage.providers.remote import CheckClient, Deadline

# S3 error codes that mean "these keys are not accepted".
REFUSED_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
# Every S3 answer carries a request id (AWS, MinIO and Ceph: x-amz-request-id; moto and other
# AWS-protocol servers: x-amzn-RequestId); an answer with neither is not S3's.
S3_ANSWER_HEADERS = ("x-amz-request-id", "x-amzn-requestid")


def no_answer(credentials: dict[str, Any], timeout: float) -> Outcome:
    endpoint = credentials["endpoint"]
    return failed(
        f"No S3 answer from {endpoint} within {timeout:g} s (check the endpoint, that this server can reach it,"
        " and `secure`)."
    )


def check(base_path: str | None, credentials: dict[str, Any], deadline: Deadline) -> Outcome:
    endpoint, bucket = str(credentials["endpoint"]), str(credentials["bucket"])
    secure = secure_flag(credentials.get("secure", True))
    http = CheckClient(deadline, confined=True, answer_headers=S3_ANSWER_HEADERS)
    try:
        client = Minio(
            endpoint,
            access_key=str(credentials["access_key"]),
            secret_key=str(credentials["secret_key"]),
            secure=secure,
            region=credentials.get("region") or None,
            http_client=http,
        )
        check_bucket_name(bucket)
        host, port = split_endpoint(endpoint, secure)
    except ValueError as exc:
        what = "bucket name" if "bucket" in str(exc).lower() else "endpoint"
        return failed(f"Invalid {what} ({exc}).")
    try:
        http.address(host, port)  # resolved and allowed before anything is sent
    except RefusedAddress as exc:
        return failed(str(exc))
    except Unresolvable:
        return failed(f"{host} does not resolve to an address.")
    try:
        if not client.bucket_exists(bucket):
            return failed(f"Bucket {bucket!r} does not exist on {endpoint}.")
    except S3Error as exc:
        return _refused(exc, endpoint, bucket)
    except (HTTPError, MinioException):
        return no_answer(credentials, deadline.seconds)
    key = "/".join(filter(None, [(base_path or "").strip("/"), f".arv-test-{uuid.uuid4().hex}"]))
    try:
        client.put_object(bucket, key, io.BytesIO(b""), 0)
    except S3Error as exc:
        return Outcome(True, f"Bucket {bucket!r} exists; writing to it was refused ({exc.code}).", False)
    except (HTTPError, MinioException):
        return no_answer(credentials, deadline.seconds)
    try:
        client.remove_object(bucket, key)
    except (S3Error, HTTPError, MinioException) as exc:
        reason = exc.code if isinstance(exc, S3Error) else "no S3 answer"
        return failed(f"Wrote {key!r} to bucket {bucket!r} but could not remove it ({reason}).")
    return Outcome(True, f"Bucket {bucket!r} on {endpoint} is writable.", True)


def _refused(exc: S3Error, endpoint: str, bucket: str) -> Outcome:
    if exc.code in REFUSED_KEYS:
        return failed(f"{endpoint} refused the access key or secret key ({exc.code}).")
    return failed(f"{endpoint} answered {exc.code} for bucket {bucket!r}.")
