"""A form's `x-amz-checksum-*` fields are verified against the file and kept, as PutObject's
headers are (decision 0037): a wrong value is BadDigest, an unknown algorithm or a value that
is not one InvalidRequest, and nothing is stored then."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

from tests.e2e.test_post_object import code_of
from tests.e2e.test_post_object_fields import error, post, poster

__all__ = ["poster"]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_checksum_fields_are_verified_and_kept(s3: Any, poster: Any, bucket: str) -> None:
    data = b"form upload with a checksum"
    sha256 = b64(hashlib.sha256(data).digest())
    answer = post(
        poster, bucket, "sha", data,
        **{"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": sha256},
    )  # fmt: skip
    assert answer.status_code == 204, answer.content
    assert answer.headers["x-amz-checksum-sha256"] == sha256
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256
    crc = b64(zlib.crc32(data).to_bytes(4, "big"))
    assert post(poster, bucket, "crc", data, **{"x-amz-checksum-crc32": crc}).status_code == 204
    assert s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")["ChecksumCRC32"] == (
        crc
    )


def test_a_wrong_or_unknown_checksum_stores_nothing(s3: Any, poster: Any, bucket: str) -> None:
    data = b"the file"
    wrong = b64(hashlib.sha256(b"another file").digest())
    answer = post(poster, bucket, "wrong", data, **{"x-amz-checksum-sha256": wrong})
    assert error(answer) == (400, "BadDigest")
    sha1 = b64(hashlib.sha1(data).digest())
    mismatched = post(
        poster, bucket, "algo", data,
        **{"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-sha1": sha1},
    )  # fmt: skip
    assert error(mismatched) == (400, "InvalidRequest")
    unknown = post(poster, bucket, "md7", data, **{"x-amz-checksum-md7": sha1})
    assert error(unknown) == (400, "InvalidRequest")
    not_base64 = post(poster, bucket, "nb", data, **{"x-amz-checksum-crc32c": "not base64!"})
    assert error(not_base64) == (400, "InvalidRequest")
    # an algorithm without its value is refused as PutObject refuses it
    alone = post(poster, bucket, "alone", data, **{"x-amz-checksum-algorithm": "SHA256"})
    assert error(alone) == (400, "InvalidRequest")
    other_md5 = base64.b64encode(hashlib.md5(b"another file").digest()).decode()
    assert error(post(poster, bucket, "md5", data, **{"content-md5": other_md5})) == (
        400, "BadDigest",
    )  # fmt: skip
    for key in ("wrong", "algo", "md7", "nb", "alone", "md5"):
        assert code_of(s3, bucket, key) == "404"
