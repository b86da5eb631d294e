"""The S3 side of `egide export` / `egide import`: any S3 endpoint, through botocore.

Not obstore, which the sites use: its paths (Rust `object_store`) cannot hold every S3 key. It
lists "dir/" as "dir" and "/a" as "a", and refuses "a//b", "./a" or "a/../b" (a listing that
meets one fails whole), while a bucket brought in from another cloud routinely holds folder
markers ("dir/") and a faithful export must write any key Égide holds. It cannot read object
tags either. botocore (the AWS SDK's core) takes keys as they are; its calls are blocking, so
each runs in a worker thread (docs/export-import.md, "S3 client").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

T = TypeVar("T")
MiB = 1024 * 1024
#: Objects up to this size go in one PUT; larger ones in parts of this size (or more, to stay
#: within S3's 10,000 parts). Memory per transfer: about one part.
PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
READ_CHUNK = 1 * MiB
#: Standard headers kept with an object, and the botocore parameter of each.
HEADER_PARAMS = {
    "content-type": "ContentType",
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "expires": "Expires",
}


class TransferError(Exception):
    """An export or import that cannot go on; the message says why, for people."""


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix` at an endpoint (None: AWS)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint: str | None, region: str | None) -> S3Location:
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise TransferError(f"{url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        return cls(bucket, prefix, endpoint, region)

    def url(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


@dataclass(frozen=True)
class S3Credentials:
    """Given at run time, never stored: None takes botocore's usual chain (AWS_* variables,
    ~/.aws, instance roles)."""

    access_key: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class Listed:
    """A key as listed: its key relative to the location's prefix."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class LockFields:
    """A version's Object Lock: retention mode until `until` (epoch seconds), legal hold."""

    mode: str | None = None
    until: float | None = None
    hold: bool = False


@dataclass(frozen=True)
class ListedVersion:
    """A version or delete marker as ListObjectVersions gives it (key relative to the
    prefix)."""

    key: str
    version_id: str
    size: int
    etag: str
    last_modified: datetime | None
    is_latest: bool
    delete_marker: bool


@dataclass(frozen=True)
class Written:
    """What a PUT (or a DeleteObject making a marker) left at the destination."""

    etag: str
    version_id: str


@dataclass(frozen=True)
class Fetched:
    """An object being read: what GET said about it, and its bytes."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None
    headers: dict[str, str]
    metadata: dict[str, str]
    tag_count: int
    body: AsyncIterator[bytes]
    lock: LockFields = LockFields()


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


def _http_date(value: object) -> str:
    if isinstance(value, datetime):
        return email.utils.format_datetime(value, usegmt=True)
    return str(value)


def newest_first(versions: list[ListedVersion]) -> list[ListedVersion]:
    """One key's versions and delete markers, newest first. S3 lists them in two lists, each
    newest first, and its LastModified is to the second: the latest goes first, then by time;
    on a tie a delete marker is taken as the newer (a key deleted then written again within a
    second). Within each list the order is S3's."""

    def rank(item: tuple[int, ListedVersion]) -> tuple[bool, float, int, int]:
        index, version = item
        stamp = version.last_modified.timestamp() if version.last_modified else 0.0
        return (not version.is_latest, -stamp, 0 if version.delete_marker else 1, index)

    return [version for _, version in sorted(enumerate(versions), key=rank)]


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives an object completed from these parts: MD5 of their MD5s, "-N"."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def part_size(size: int) -> int:
    return max(PART_SIZE, math.ceil(size / MAX_PARTS))


class S3Endpoint:
    """One bucket and prefix of an S3 endpoint: list, read, write, in key order."""

    def __init__(self, location: S3Location, credentials: S3Credentials) -> None:
        self.location = location
        config = Config(
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=16,
            # Providers other than AWS often refuse the CRC32 trailers of newer SDKs; each PUT
            # carries Content-MD5 instead, which every S3 implementation checks.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=location.endpoint,
            region_name=location.region or "us-east-1",
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            config=config,
        )

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            raise self._error(exc) from exc
        except NoCredentialsError as exc:
            raise TransferError(
                f"no credentials for {self.location.url()}: give --access-key and "
                "--secret-key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        except EndpointConnectionError as exc:
            raise TransferError(f"cannot reach {self.location.url()}: {exc}") from exc
        except BotoCoreError as exc:
            raise TransferError(f"{self.location.url()}: {exc}") from exc

    def _error(self, exc: ClientError) -> TransferError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = self.location.url()
        if code in ("NoSuchBucket", "404") and "Key" not in error:
            return TransferError(f"bucket {self.location.bucket!r} does not exist ({where})")
        if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId"):
            return TransferError(f"{where} refused access: {code} {error.get('Message', '')}")
        return TransferError(f"{where}: {code or status} {error.get('Message', '')}".rstrip())

    def _key(self, key: str) -> str:
        return self.location.prefix + key

    async def check(self) -> None:
        """The endpoint answers and the bucket exists, before any job is created."""
        await self._call(self.client.head_bucket, Bucket=self.location.bucket)

    async def is_empty(self) -> bool:
        page = await self._call(
            self.client.list_objects_v2,
            Bucket=self.location.bucket, Prefix=self.location.prefix, MaxKeys=1,
        )  # fmt: skip
        return not page.get("Contents")

    async def versioning_enabled(self) -> bool:
        found = await self._call(self.client.get_bucket_versioning, Bucket=self.location.bucket)
        return bool(found.get("Status") == "Enabled")

    async def lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock (then versions may be written with theirs)."""
        try:
            found = await self._call(
                self.client.get_object_lock_configuration, Bucket=self.location.bucket
            )
        except TransferError:  # ObjectLockConfigurationNotFoundError, or not implemented
            return False
        return bool(found.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled")

    async def has_versions(self) -> bool:
        """Whether anything is under the prefix: a version, noncurrent or not, or a marker."""
        page = await self._call(
            self.client.list_object_versions,
            Bucket=self.location.bucket, Prefix=self.location.prefix, MaxKeys=1,
        )  # fmt: skip
        return bool(page.get("Versions") or page.get("DeleteMarkers"))

    async def _version_pages(
        self, prefix: str, after: str | None
    ) -> AsyncIterator[list[ListedVersion]]:
        """Pages of ListObjectVersions under `prefix` (full keys), keys after `after` (full),
        each page's entries in key order (within a key, as listed)."""
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": prefix}
        if after is not None:
            args["KeyMarker"] = after
        while True:
            page = await self._call(self.client.list_object_versions, **args)
            found = [
                _listed_version(item, self.location.prefix, kind == "DeleteMarkers")
                for kind in ("Versions", "DeleteMarkers")
                for item in page.get(kind, [])
            ]
            yield sorted(found, key=lambda v: v.key)  # stable: each key's order is kept
            if not page.get("IsTruncated"):
                return
            args["KeyMarker"] = page.get("NextKeyMarker")
            args["VersionIdMarker"] = page.get("NextVersionIdMarker")

    async def histories(self, after: str | None = None) -> AsyncIterator[list[ListedVersion]]:
        """Every key under the prefix sorting after `after` (relative) with its versions and
        delete markers, oldest first."""
        group: list[ListedVersion] = []
        start = None if after is None else self._key(after)
        async for page in self._version_pages(self.location.prefix, start):
            for version in page:
                if group and group[0].key != version.key:
                    yield newest_first(group)[::-1]
                    group = []
                group.append(version)
        if group:
            yield newest_first(group)[::-1]

    async def history(self, key: str) -> list[ListedVersion]:
        """The versions and delete markers of `key` (relative), oldest first."""
        found: list[ListedVersion] = []
        async for page in self._version_pages(self._key(key), None):
            found += [version for version in page if version.key == key]
            if page and page[-1].key > key:
                break
        return newest_first(found)[::-1]

    async def list(self, after: str | None = None) -> AsyncIterator[Listed]:
        """Keys under the prefix sorting after `after` (relative), in S3's order."""
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": self.location.prefix}
        if after is not None:
            args["StartAfter"] = self._key(after)
        while True:
            page = await self._call(self.client.list_objects_v2, **args)
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.location.prefix) :]
                yield Listed(key, int(item["Size"]), _etag(item.get("ETag")))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token

    async def head(self, key: str) -> Listed | None:
        try:
            head = await self._call(
                self.client.head_object, Bucket=self.location.bucket, Key=self._key(key)
            )
        except TransferError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
                "NotFound",
            ):
                return None
            raise
        return Listed(key, int(head["ContentLength"]), _etag(head.get("ETag")))

    async def get(self, key: str, version_id: str | None = None) -> Fetched:
        which = {} if version_id is None else {"VersionId": version_id}
        response = await self._call(
            self.client.get_object, Bucket=self.location.bucket, Key=self._key(key), **which
        )
        headers = {}
        for header, param in HEADER_PARAMS.items():
            value = response.get("ExpiresString") if param == "Expires" else response.get(param)
            if value is not None:
                headers[header] = _http_date(value)
        stream = response["Body"]

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await self._call(stream.read, READ_CHUNK):
                    yield chunk
            finally:
                stream.close()

        return Fetched(
            key=key, size=int(response["ContentLength"]), etag=_etag(response.get("ETag")),
            last_modified=response.get("LastModified"), headers=headers,
            metadata={str(k).lower(): str(v) for k, v in response.get("Metadata", {}).items()},
            tag_count=int(response.get("TagCount") or 0), body=body(), lock=_lock_of(response),
        )  # fmt: skip

    async def tags(self, key: str, version_id: str | None = None) -> dict[str, str]:
        which = {} if version_id is None else {"VersionId": version_id}
        found = await self._call(
            self.client.get_object_tagging, Bucket=self.location.bucket, Key=self._key(key),
            **which,
        )  # fmt: skip
        return {str(tag["Key"]): str(tag["Value"]) for tag in found.get("TagSet", [])}

    async def delete_marker(self, key: str) -> str:
        """Put a delete marker on `key` (a versioned bucket); its version id."""
        done = await self._call(
            self.client.delete_object, Bucket=self.location.bucket, Key=self._key(key)
        )
        return str(done.get("VersionId") or "")

    def _put_args(
        self, key: str, headers: dict[str, str], metadata: dict[str, str], tags: dict[str, str],
        lock: LockFields | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self._key(key)}
        for header, value in headers.items():
            param = HEADER_PARAMS.get(header)
            if param == "Expires":
                try:
                    args[param] = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError):
                    continue  # S3 itself keeps an unparsable Expires as absent
            elif param is not None:
                args[param] = value
        if metadata:
            args["Metadata"] = metadata
        if tags:
            args["Tagging"] = "&".join(
                f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(tags.items())
            )
        if lock is not None:
            # S3 refuses a retain-until date in the past; such a retention holds nothing.
            if lock.mode and lock.until is not None and lock.until > time.time():
                args["ObjectLockMode"] = lock.mode
                args["ObjectLockRetainUntilDate"] = datetime.fromtimestamp(lock.until, UTC)
            if lock.hold:
                args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    async def put(
        self,
        key: str,
        body: AsyncIterator[bytes],
        size: int,
        *,
        headers: dict[str, str],
        metadata: dict[str, str],
        tags: dict[str, str],
        lock: LockFields | None = None,
    ) -> Written:
        """Write `key` from `body` (`size` bytes): one PUT, or a multipart upload for large
        objects, each request with its Content-MD5. The ETag the destination must now report,
        and the version id it gave (empty in a bucket without versioning). `lock`: the
        version's Object Lock, for a bucket that has it."""
        args = self._put_args(key, headers, metadata, tags, lock)
        if size <= PART_SIZE:
            data = b"".join([chunk async for chunk in body])
            digest = hashlib.md5(data).digest()
            done = await self._call(
                self.client.put_object, Body=data,
                ContentMD5=base64.b64encode(digest).decode(), **args,
            )  # fmt: skip
            return Written(digest.hex(), str(done.get("VersionId") or ""))
        upload = await self._call(self.client.create_multipart_upload, **args)
        upload_id = upload["UploadId"]
        target = part_size(size)
        try:
            md5s: list[bytes] = []
            parts: list[dict[str, Any]] = []
            async for data in _rechunk(body, target):
                digest = hashlib.md5(data).digest()
                number = len(parts) + 1
                done = await self._call(
                    self.client.upload_part, Bucket=args["Bucket"], Key=args["Key"],
                    UploadId=upload_id, PartNumber=number, Body=data,
                    ContentMD5=base64.b64encode(digest).decode(),
                )  # fmt: skip
                md5s.append(digest)
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
            done = await self._call(
                self.client.complete_multipart_upload, Bucket=args["Bucket"], Key=args["Key"],
                UploadId=upload_id, MultipartUpload={"Parts": parts},
            )  # fmt: skip
        except BaseException:
            # Cancelled or failed: the parts sent are discarded. A SIGKILL leaves them to the
            # bucket's AbortIncompleteMultipartUpload lifecycle rule (docs/export-import.md).
            await asyncio.shield(self._abort(args["Bucket"], args["Key"], upload_id))
            raise
        return Written(multipart_etag(md5s), str(done.get("VersionId") or ""))

    async def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            await asyncio.to_thread(
                self.client.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id
            )


def _listed_version(item: dict[str, Any], prefix: str, marker: bool) -> ListedVersion:
    return ListedVersion(
        key=str(item["Key"])[len(prefix) :], version_id=str(item.get("VersionId") or "null"),
        size=int(item.get("Size") or 0), etag=_etag(item.get("ETag")),
        last_modified=item.get("LastModified"), is_latest=bool(item.get("IsLatest")),
        delete_marker=marker,
    )  # fmt: skip


def _lock_of(response: dict[str, Any]) -> LockFields:
    until = response.get("ObjectLockRetainUntilDate")
    return LockFields(
        mode=response.get("ObjectLockMode"),
        until=until.timestamp() if isinstance(until, datetime) else None,
        hold=response.get("ObjectLockLegalHoldStatus") == "ON",
    )


async def _rechunk(body: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """`body` cut into pieces of exactly `size` bytes (the last shorter), joined once each."""
    pending: list[bytes] = []
    held = 0
    async for chunk in body:
        view = memoryview(chunk)
        while view:
            take = view[: size - held]
            pending.append(bytes(take))
            held += len(take)
            view = view[len(take) :]
            if held == size:
                yield b"".join(pending)
                pending, held = [], 0
    if pending:
        yield b"".join(pending)
