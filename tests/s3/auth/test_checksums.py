"""x-amz-checksum-*: our values against botocore's, and the request-header rules S3 applies."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from botocore import httpchecksum
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config

from egide.s3 import errors
from egide.s3.auth.checksums import Checksum, ChecksumAlgorithm, requested_checksum, verify
from egide.web.request import RequestHead

BOTOCORE = {
    ChecksumAlgorithm.CRC32: httpchecksum.Crc32Checksum,
    ChecksumAlgorithm.CRC32C: httpchecksum.CrtCrc32cChecksum,
    ChecksumAlgorithm.CRC64NVME: httpchecksum.CrtCrc64NvmeChecksum,
    ChecksumAlgorithm.SHA1: httpchecksum.Sha1Checksum,
    ChecksumAlgorithm.SHA256: httpchecksum.Sha256Checksum,
}


def head(**headers: str) -> RequestHead:
    return RequestHead("PUT", "/b/k", headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize("algorithm", list(ChecksumAlgorithm))
@pytest.mark.parametrize("size", [0, 1, 7, 65536, 300_001])
def test_matches_botocore(algorithm: ChecksumAlgorithm, size: int) -> None:
    data = os.urandom(size)
    ours = Checksum(algorithm)
    theirs = BOTOCORE[algorithm]()
    view = memoryview(data)
    for start in range(0, size, 4099):  # incremental, with views
        ours.update(view[start : start + 4099])
    theirs.update(data)
    assert ours.b64() == theirs.b64digest()
    assert len(ours.digest()) == algorithm.digest_size


def test_aws_doc_crc32c_value() -> None:
    # The trailer of https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
    checksum = Checksum(ChecksumAlgorithm.CRC32C)
    checksum.update(b"a" * 66560)
    assert checksum.b64() == "sOO8/Q=="


def test_verify() -> None:
    checksum = Checksum(ChecksumAlgorithm.CRC32)
    checksum.update(b"hello\n")
    verify("NjowIA==", checksum)
    with pytest.raises(errors.BadDigest) as caught:
        verify("AAAAAA==", checksum)
    assert caught.value.message == "The CRC32 you specified did not match the calculated checksum."
    with pytest.raises(errors.InvalidRequest, match="crc32 trailing header is invalid"):
        verify("AAAAAAAA", checksum)


def test_verify_names_the_algorithm() -> None:
    checksum = Checksum(ChecksumAlgorithm.CRC64NVME)
    with pytest.raises(errors.BadDigest, match="The CRC64NVME you specified"):
        verify("AAAAAAAAAAE=", checksum)


def test_header_value() -> None:
    assert requested_checksum(head(x_amz_checksum_crc32c="sOO8/Q==")) == (
        ChecksumAlgorithm.CRC32C,
        "sOO8/Q==",
    )
    both = head(
        x_amz_checksum_sha1="98O8HYCOBHMq32eZZczDTKeuNEE=", x_amz_sdk_checksum_algorithm="SHA1"
    )
    assert requested_checksum(both) == (ChecksumAlgorithm.SHA1, "98O8HYCOBHMq32eZZczDTKeuNEE=")


def test_trailer() -> None:
    request = head(
        x_amz_trailer="x-amz-checksum-crc64nvme", x_amz_sdk_checksum_algorithm="CRC64NVME"
    )
    assert requested_checksum(request) == (ChecksumAlgorithm.CRC64NVME, None)


def test_none_and_unrelated_headers() -> None:
    assert requested_checksum(head()) is None
    assert requested_checksum(head(x_amz_checksum_mode="ENABLED")) is None
    assert requested_checksum(head(x_amz_checksum_type="FULL_OBJECT")) is None
    assert requested_checksum(head(x_amz_checksum_algorithm="CRC32")) is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x_amz_checksum_crc32": "AAAAAAAA"}, "Value for x-amz-checksum-crc32 header is invalid."),
        ({"x_amz_checksum_crc32": "not base64!"}, "Value for x-amz-checksum-crc32 header is"),
        ({"x_amz_checksum_sha256": "AAAAAA=="}, "Value for x-amz-checksum-sha256 header is"),
        ({"x_amz_checksum_md5": "AAAAAA=="}, "algorithm type you specified"),
        ({"x_amz_checksum_crc32": "AAAAAA==", "x_amz_checksum_crc32c": "AAAAAA=="}, "Multiple"),
        ({"x_amz_checksum_crc32": "AAAAAA==", "x_amz_trailer": "x-amz-checksum-crc32"}, "single"),
        ({"x_amz_trailer": "x-amz-checksum-md5"}, "x-amz-trailer header is not supported"),
        ({"x_amz_trailer": "x-amz-meta-foo"}, "x-amz-trailer header is not supported"),
        ({"x_amz_sdk_checksum_algorithm": "CRC32"}, "but no corresponding x-amz-checksum-*"),
        (
            {"x_amz_sdk_checksum_algorithm": "SHA1", "x_amz_checksum_crc32": "AAAAAA=="},
            "Value for x-amz-sdk-checksum-algorithm header is invalid.",
        ),
        (
            {"x_amz_sdk_checksum_algorithm": "MD5", "x_amz_trailer": "x-amz-checksum-crc32"},
            "Value for x-amz-sdk-checksum-algorithm header is invalid.",
        ),
    ],
)
def test_invalid_requests(headers: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        requested_checksum(head(**headers))
    assert message in caught.value.message


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        self.request = request


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_botocore_put_object_header_checksum(algorithm: str) -> None:
    client: Any = boto3.client(
        "s3",
        endpoint_url="http://localhost:9000",
        region_name="us-east-1",
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
        config=Config(s3={"addressing_style": "path"}),
    )

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.s3", stop)
    body = os.urandom(10_000)
    with pytest.raises(_Captured) as caught:
        client.put_object(Bucket="b", Key="k", Body=body, ChecksumAlgorithm=algorithm)
    headers = {
        k.lower(): v.decode() if isinstance(v, bytes) else v
        for k, v in caught.value.request.headers.items()
    }
    requested = requested_checksum(RequestHead("PUT", "/b/k", headers=headers))
    assert requested is not None
    chosen, value = requested
    assert chosen.name == algorithm and value is not None
    checksum = Checksum(chosen)
    checksum.update(body)
    verify(value, checksum)
    checksum.update(b"!")
    with pytest.raises(errors.BadDigest):
        verify(value, checksum)
