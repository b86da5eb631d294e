"""The x-amz-checksum-* family: which checksum a request asks for, computing it, comparing it.

Rules and messages follow what S3 answers (Swift's s3api mirrors them, tested against AWS):
https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from enum import Enum

from awscrt import checksums as crt

from egide.s3.errors import BadDigest, InvalidRequest
from egide.web.request import RequestHead

_PREFIX = "x-amz-checksum-"
# x-amz-checksum-* headers that name something other than a checksum value.
_NOT_VALUES = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})


class ChecksumAlgorithm(Enum):
    """An S3 additional checksum; the value is the suffix of its x-amz-checksum- header."""

    CRC32 = "crc32"
    CRC32C = "crc32c"
    CRC64NVME = "crc64nvme"
    SHA1 = "sha1"
    SHA256 = "sha256"

    @property
    def header(self) -> str:
        return _PREFIX + self.value

    @property
    def digest_size(self) -> int:
        return _DIGEST_SIZES[self]


_DIGEST_SIZES = {
    ChecksumAlgorithm.CRC32: 4,
    ChecksumAlgorithm.CRC32C: 4,
    ChecksumAlgorithm.CRC64NVME: 8,
    ChecksumAlgorithm.SHA1: 20,
    ChecksumAlgorithm.SHA256: 32,
}
_CRCS = {
    ChecksumAlgorithm.CRC32: crt.crc32,
    ChecksumAlgorithm.CRC32C: crt.crc32c,
    ChecksumAlgorithm.CRC64NVME: crt.crc64nvme,
}


class Checksum:
    """Incremental checksum over a body that arrives in pieces."""

    __slots__ = ("_crc", "_hash", "algorithm")

    def __init__(self, algorithm: ChecksumAlgorithm) -> None:
        self.algorithm = algorithm
        self._crc = 0
        self._hash = hashlib.new(algorithm.value) if algorithm not in _CRCS else None

    def update(self, data: bytes | memoryview) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._crc = _CRCS[self.algorithm](data, self._crc)

    def digest(self) -> bytes:
        """Big-endian for the CRCs, as S3 encodes them."""
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(self.algorithm.digest_size, "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def _algorithm(suffix: str) -> ChecksumAlgorithm | None:
    try:
        return ChecksumAlgorithm(suffix.strip().lower())
    except ValueError:
        return None


def decode_value(algorithm: ChecksumAlgorithm, value: str) -> bytes | None:
    """The raw digest of a base64 checksum value, or None if it is not one for `algorithm`."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == algorithm.digest_size else None


def requested_checksum(head: RequestHead) -> tuple[ChecksumAlgorithm, str | None] | None:
    """The checksum a request asks us to verify, and its value when it is sent up front.

    The value is None when it will come in the aws-chunked trailer named by x-amz-trailer.
    """
    given: list[tuple[ChecksumAlgorithm, str | None]] = []
    for name, value in head.headers.items():
        if not name.startswith(_PREFIX) or name in _NOT_VALUES:
            continue
        algorithm = _algorithm(name[len(_PREFIX) :])
        if algorithm is None:
            raise InvalidRequest(
                "The algorithm type you specified in x-amz-checksum- header is invalid."
            )
        given.append((algorithm, value))
    if len(given) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )

    trailer = head.header("x-amz-trailer", "") or ""
    for name in filter(None, (part.strip().lower() for part in trailer.split(","))):
        algorithm = _algorithm(name[len(_PREFIX) :]) if name.startswith(_PREFIX) else None
        if algorithm is None:
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")
        given.append((algorithm, None))
    if len(given) > 1:
        # AWS words this case without the second sentence.
        raise InvalidRequest("Expecting a single x-amz-checksum- header")

    sdk = head.header("x-amz-sdk-checksum-algorithm")
    if sdk is not None:
        if not given:
            raise InvalidRequest(
                "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                "x-amz-checksum-* or x-amz-trailer headers were found."
            )
        if _algorithm(sdk) is not given[0][0]:
            raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
    if not given:
        return None

    algorithm, up_front = given[0]
    if up_front is None:
        return algorithm, None
    if decode_value(algorithm, up_front) is None:
        raise InvalidRequest(f"Value for {algorithm.header} header is invalid.")
    return algorithm, up_front.strip()


def verify(expected_b64: str, checksum: Checksum) -> None:
    """Compare a client's checksum with ours; a trailer value is only validated here."""
    algorithm = checksum.algorithm
    expected = decode_value(algorithm, expected_b64)
    if expected is None:
        raise InvalidRequest(f"Value for {algorithm.header} trailing header is invalid.")
    if not hmac.compare_digest(expected, checksum.digest()):
        raise BadDigest(
            f"The {algorithm.name} you specified did not match the calculated checksum."
        )
