"""SSE-C: a customer-provided key as an extra wrapping of a version's data key (decision 0027).

The key itself is never stored. A version (or upload) written under one keeps two headers: the
algorithm, which GET and HEAD answer as S3 does, and a salted HMAC-SHA256 of the key, which
tells the right key from a wrong one before anything is read. Its data key, in the catalog and
in every manifest, is `wrap(bucket key, wrap(customer key, data key, "egide/customer-data-key/"
+ version id), "egide/data-key/" + version id)`: without the customer key nothing opens its
bytes, not even the master key. Bucket key and master key rotations rewrap the outer layer as
opaque bytes and keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from egide.crypto import aead
from egide.domain import DomainError

ALGORITHM_HEADER = "x-amz-server-side-encryption-customer-algorithm"
#: Stored, never answered: `<salt hex>:<HMAC-SHA256(salt, key) hex>`.
FINGERPRINT_HEADER = "x-amz-server-side-encryption-customer-key-hmac"
CONTEXT = b"egide/customer-data-key/"


class CustomerKeyRequired(DomainError):
    """The version or upload is under a customer key and none (or another one) was given."""


def stored_headers(key: bytes) -> dict[str, str]:
    """What a version written under `key` keeps: the algorithm and a salted HMAC of the key."""
    salt = os.urandom(16)
    digest = hmac.new(salt, key, hashlib.sha256).hexdigest()
    return {ALGORITHM_HEADER: "AES256", FINGERPRINT_HEADER: f"{salt.hex()}:{digest}"}


def under_customer_key(headers: Mapping[str, str]) -> bool:
    return FINGERPRINT_HEADER in headers


def matches(key: bytes, headers: Mapping[str, str]) -> bool:
    """Whether `key` is the one the version (or upload) with `headers` was written under."""
    salt, _, digest = headers.get(FINGERPRINT_HEADER, "").partition(":")
    try:
        expected = hmac.new(bytes.fromhex(salt), key, hashlib.sha256).hexdigest()
    except ValueError:
        return False
    return hmac.compare_digest(expected, digest)


def seal_data_key(key: bytes, owner_id: bytes, data_key: bytes) -> bytes:
    """The data key of version (or upload) `owner_id` wrapped under the customer key; the
    result is then wrapped under the bucket key like any data key."""
    return aead.wrap(key, data_key, CONTEXT + owner_id)


def open_data_key(
    key: bytes | None, owner_id: bytes, inner: bytes, headers: Mapping[str, str]
) -> bytes:
    """The data key of a version or upload, `inner` being what its bucket key unwrapped: the
    data key itself, or, under a customer key, the data key wrapped under it."""
    if not under_customer_key(headers):
        return inner
    if key is None or not matches(key, headers):
        raise CustomerKeyRequired(
            f"{owner_id.hex()} is stored under a customer-provided key (SSE-C), which Égide "
            "never keeps: it cannot be read without it"
        )
    return aead.unwrap(key, inner, CONTEXT + owner_id)
