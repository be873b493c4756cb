"""An in-memory S3 client for unit tests: the calls the segment destinations make, with S3's
conditional writes (``IfNoneMatch="*"``, ``IfMatch=<etag>``) and errors."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


class _NoSuchKey(ClientError):
    pass


class FakeS3:
    class exceptions:
        NoSuchKey = _NoSuchKey

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()
        self.puts = 0

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.md5(body).hexdigest() + '"'

    def put_object(
        self,
        Bucket: str,
        Key: str,
        Body: bytes | str,
        IfNoneMatch: str | None = None,
        IfMatch: str | None = None,
        **_: Any,
    ) -> dict:
        body = Body.encode() if isinstance(Body, str) else bytes(Body)
        with self.lock:
            current = self.objects.get((Bucket, Key))
            if IfNoneMatch == "*" and current is not None:
                raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
            if IfMatch is not None and (current is None or self.etag(current) != IfMatch):
                raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
            self.objects[(Bucket, Key)] = body
            self.puts += 1
        return {"ETag": self.etag(body)}

    def get_object(self, Bucket: str, Key: str) -> dict:
        with self.lock:
            body = self.objects.get((Bucket, Key))
        if body is None:
            raise _NoSuchKey({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": io.BytesIO(body), "ETag": self.etag(body)}

    def delete_object(self, Bucket: str, Key: str) -> dict:
        with self.lock:
            self.objects.pop((Bucket, Key), None)
        return {}

    def upload_file(self, filename: str, bucket: str, key: str) -> None:
        self.put_object(Bucket=bucket, Key=key, Body=Path(filename).read_bytes())

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes(self.objects[(bucket, key)])

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        fake = self

        class _Paginator:
            def paginate(self, Bucket: str, Prefix: str = "") -> list[dict]:
                contents = [
                    {"Key": key, "Size": len(body), "ETag": fake.etag(body)}
                    for (bucket, key), body in sorted(fake.objects.items())
                    if bucket == Bucket and key.startswith(Prefix)
                ]
                return [{"Contents": contents}]

        return _Paginator()
