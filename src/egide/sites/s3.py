"""A site in a bucket of any S3-compatible provider, through obstore (Rust `object_store`).

A shard is written through obstore's buffered writer: up to `PART_SIZE` bytes stay in memory,
and a shard that ends there is sent in one PUT on commit; a longer one becomes a multipart
upload whose parts stream out while the shard is written (at most `UPLOAD_CONCURRENCY` parts in
flight, so memory stays bounded), completed on commit. Either way the object appears under its
name only when commit returns; abort drops the buffer or aborts the multipart upload.
See docs/decisions/0006-s3-provider-client.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from egide.config import ConfigError, S3SiteConfig
from egide.sites.base import ShardMissing, SiteError

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, GetOptions

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Bytes buffered before a shard turns into a multipart upload, and the size of each part
#: (S3 wants at least 5 MiB for every part but the last).
PART_SIZE = 8 * MiB
#: Parts of one shard uploaded at the same time; memory per shard is about (1 + this) parts.
UPLOAD_CONCURRENCY = 2
#: Written by `prepare` under the prefix: proves at start that the bucket takes writes.
MARKER = ".egide-site"
#: What obstore raises: its own errors, plus FileNotFoundError/OSError/ValueError for some.
PROVIDER_ERRORS = (ObstoreError, OSError, ValueError, RuntimeError)

_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]+)</Code>")


def _status(exc: BaseException) -> int | None:
    found = _STATUS.search(str(exc))
    return int(found.group(1)) if found else None


def _s3_code(exc: BaseException) -> str | None:
    found = _CODE.search(str(exc))
    return found.group(1) if found else None


def describe_error(exc: BaseException) -> str:
    """One readable line from obstore's message (which appends a multi-line debug dump)."""
    text = str(exc)
    line = text.split("\n", 1)[0].split(": <?xml", 1)[0].rstrip(": ")
    code = _s3_code(exc)
    if code:
        line += f" ({code})"
    elif "kind: Timeout" in text or "operation timed out" in text:
        line += " (timed out)"
    elif "kind: Connect" in text:
        line += " (cannot connect)"
    return line[:600]


class S3ShardWriter:
    def __init__(self, site: S3Site, shard: str, file: AsyncWritableFile) -> None:
        self._site, self._shard, self._file = site, shard, file
        self._closed = False

    async def write(self, data: bytes) -> None:
        try:
            await self._file.write(data)
        except PROVIDER_ERRORS as exc:
            raise self._site.error("write", self._shard, exc) from exc

    async def commit(self) -> None:
        self._closed = True
        try:
            await self._file.close()
        except PROVIDER_ERRORS as exc:
            raise self._site.error("commit", self._shard, exc) from exc

    async def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Leaving with an exception is how obstore's writer aborts: it drops the buffer, or
        # aborts the multipart upload (parts already sent are discarded by the provider).
        # If the provider is unreachable the upload stays incomplete and invisible; a bucket
        # lifecycle rule (AbortIncompleteMultipartUpload) reclaims it.
        reason = SiteError("aborted")
        with contextlib.suppress(*PROVIDER_ERRORS):
            await self._file.__aexit__(SiteError, reason, None)


class S3Site:
    """Shards as objects `{prefix}{shard}` in one bucket; the bucket may hold other things."""

    def __init__(self, config: S3SiteConfig) -> None:
        self.name = config.name
        self.config = config
        self.prefix = config.prefix
        access, secret = config.resolved_credentials()
        backoff_cap = min(15.0, config.timeout_seconds)
        self.store = S3Store(
            config.bucket,
            endpoint=config.endpoint,
            region=config.region,
            access_key_id=access,
            secret_access_key=secret,
            virtual_hosted_style_request=config.virtual_hosted_style,
            client_options={
                "allow_http": config.allow_http,
                "timeout": timedelta(seconds=config.timeout_seconds),
                "connect_timeout": timedelta(seconds=config.connect_timeout_seconds),
            },
            retry_config={
                "max_retries": config.max_retries,
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=backoff_cap),
                    "base": 2,
                },
                # Bounds the whole retried operation, so a dead provider costs a bounded wait.
                "retry_timeout": timedelta(
                    seconds=(config.max_retries + 1) * (config.timeout_seconds + backoff_cap)
                ),
            },
        )

    def where(self) -> str:
        return f"{self.config.endpoint}/{self.config.bucket}/{self.prefix}"

    def error(self, action: str, shard: str, exc: BaseException) -> SiteError:
        return SiteError(f"site {self.name}: {action} {shard} failed: {describe_error(exc)}")

    def _key(self, shard: str) -> str:
        return self.prefix + shard

    # -- start-up (synchronous: runs before any event loop) -----------------------------------

    def prepare(self) -> None:
        """At start: prove the bucket takes writes with these credentials. A missing bucket or
        refused credentials stop the start; an unreachable provider is only logged, so that one
        provider down does not keep the others from serving (reads rebuild from them)."""
        try:
            self._put_marker()
            return
        except PROVIDER_ERRORS as exc:
            status, code = _status(exc), _s3_code(exc)
            if code == "NoSuchBucket" and self.config.create_bucket:
                self._create_bucket()
            elif code == "NoSuchBucket":
                raise ConfigError(
                    f"site {self.name}: bucket {self.config.bucket!r} does not exist at "
                    f"{self.config.endpoint}; create it, or set create_bucket = true"
                ) from None
            elif status in (401, 403):
                raise ConfigError(
                    f"site {self.name}: {self.config.endpoint} refused access to bucket "
                    f"{self.config.bucket!r}: {describe_error(exc)}"
                ) from None
            else:
                log.warning(
                    "site %s (%s) is unreachable at start, continuing without it: %s",
                    self.name, self.where(), describe_error(exc),
                )  # fmt: skip
                return
        try:
            self._put_marker()
        except PROVIDER_ERRORS as exc:
            raise ConfigError(
                f"site {self.name}: created bucket {self.config.bucket!r} but cannot write to "
                f"it: {describe_error(exc)}"
            ) from None

    def attach(self) -> None:
        """Nothing to open per process: the client connects on first use."""

    def _put_marker(self) -> None:
        obstore.put(self.store, self._key(MARKER), f"egide site {self.name}\n".encode())

    def _create_bucket(self) -> None:
        """obstore has no bucket API: it signs the CreateBucket request (a presigned PUT on the
        bucket itself) and one plain request sends it."""
        url = obstore.sign(self.store, "PUT", "", timedelta(minutes=5))
        body = b""
        if self.config.region != "us-east-1":  # AWS: us-east-1 takes no location constraint
            body = (
                "<CreateBucketConfiguration><LocationConstraint>"
                f"{self.config.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        request = urllib.request.Request(url, data=body, method="PUT")
        timeout = self.config.connect_timeout_seconds + self.config.timeout_seconds
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                pass
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            if "BucketAlreadyOwnedByYou" not in detail:
                raise ConfigError(
                    f"site {self.name}: cannot create bucket {self.config.bucket!r}: "
                    f"{exc.code} {exc.reason} {' '.join(_CODE.findall(detail))}".rstrip()
                ) from None
        except OSError as exc:
            raise ConfigError(
                f"site {self.name}: cannot create bucket {self.config.bucket!r}: {exc}"
            ) from None
        log.info("site %s: created bucket %s", self.name, self.config.bucket)

    # -- the Site interface --------------------------------------------------------------------

    async def writer(self, shard: str) -> S3ShardWriter:
        file = obstore.open_writer_async(
            self.store, self._key(shard), buffer_size=PART_SIZE, max_concurrency=UPLOAD_CONCURRENCY
        )
        return S3ShardWriter(self, shard, file)

    async def read(self, shard: str, offset: int, length: int) -> bytes:
        key = self._key(shard)
        try:
            if length == 0:
                if await self.size(shard) is None:
                    raise FileNotFoundError(key)
                return b""
            if length > 0:
                data = await obstore.get_range_async(self.store, key, start=offset, length=length)
            else:
                # An empty object has no byte 0: S3 answers a range on it with 416.
                options: GetOptions | None = {"range": {"offset": offset}} if offset else None
                result = await obstore.get_async(self.store, key, options=options)
                data = await result.bytes_async()
        except FileNotFoundError as exc:
            raise ShardMissing(f"site {self.name}: shard {shard} missing") from exc
        except PROVIDER_ERRORS as exc:
            if _status(exc) == 416:  # the range starts at or past the end: nothing there
                return b""
            raise self.error("read", shard, exc) from exc
        return data.to_bytes()

    async def size(self, shard: str) -> int | None:
        try:
            meta = await obstore.head_async(self.store, self._key(shard))
        except FileNotFoundError:
            return None
        except PROVIDER_ERRORS as exc:
            raise self.error("size of", shard, exc) from exc
        return meta["size"]

    async def delete(self, shard: str) -> None:
        try:
            await obstore.delete_async(self.store, self._key(shard))
        except FileNotFoundError:
            return
        except PROVIDER_ERRORS as exc:
            raise self.error("delete", shard, exc) from exc

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        # obstore lists by whole path segments ("a/b" lists "a/b/…", not "a/bc"): list the
        # segment that holds `{prefix}{prefix arg}` and filter by plain string prefix.
        wanted = self.prefix + prefix
        folder = wanted.rsplit("/", 1)[0] if "/" in wanted else None
        try:
            async for batch in obstore.list(self.store, prefix=folder, chunk_size=1000):
                for meta in batch:
                    path = meta["path"]
                    name = path[len(self.prefix) :]
                    # Deeper paths belong to another prefix (another site sharing the bucket).
                    if path.startswith(wanted) and "/" not in name and name != MARKER:
                        yield name
        except PROVIDER_ERRORS as exc:
            raise SiteError(f"site {self.name}: list failed: {describe_error(exc)}") from exc
