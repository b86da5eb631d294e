"""Server-side encryption headers of S3 requests: each one honoured or refused, none ignored.

Égide encrypts every object under keys the organisation holds, whatever a request says
(decision 0027). So:

- **SSE-S3** (`x-amz-server-side-encryption: AES256`) states what is always true: a write that
  asks for it is accepted, the version keeps the header, and PUT, GET, HEAD, copy and
  multipart responses answer it as S3 does;
- **SSE-KMS** (`aws:kms`) names the bucket's key, which wraps every data key of the bucket
  whatever its generation (decision 0033): a key id is `arn:egide:kms:::bucket/<bucket>`,
  `bucket/<bucket>` or the alias `alias/egide/bucket` ("the key of the bucket written to"), no
  key id is the bucket's key, anything else is 400 KMS.NotFoundException; the version keeps
  method and key id, answered as S3 does. `bucket-key-enabled: true` is what Égide always does
  (answered); `false`, an encryption context and `aws:kms:dsse` are refused (501);
- **SSE-C** (a customer key) is checked as S3 checks it (algorithm, 256 bits, MD5), then used as
  an extra wrapping of the object's data key (egide.engine.customer_keys): reading the object,
  copying it or adding a part to its upload needs the key (400 without it or with another);
  a key sent for an object stored without one gets S3's 400.

Malformed and conflicting headers get the codes S3 answers. Every check runs before the
request's body is read: nothing is stored when one fails. A customer key never appears in an
error, a log line or anything stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from egide.engine.customer_keys import ALGORITHM_HEADER, matches, under_customer_key
from egide.s3 import errors
from egide.web.request import RequestHead

SSE = "x-amz-server-side-encryption"
AES256 = "AES256"
KMS = "aws:kms"
KMS_METHODS = (KMS, "aws:kms:dsse")
KMS_KEY_ID = f"{SSE}-aws-kms-key-id"
KMS_CONTEXT = f"{SSE}-context"
BUCKET_KEY = f"{SSE}-bucket-key-enabled"
#: Prefix of a copy's source SSE-C headers (`…-customer-algorithm`, `-key`, `-key-md5`).
COPY_SOURCE = "x-amz-copy-source-server-side-encryption"
KEY_MD5 = f"{SSE}-customer-key-md5"
#: What SSE-KMS key ids name (decision 0033): the key of the bucket written to.
KEY_ARN_PREFIX = "arn:egide:kms:::"
BUCKET_ALIAS = "alias/egide/bucket"
_CUSTOMER_MESSAGE = "Requests specifying Server Side Encryption with Customer provided keys must"


@dataclass(frozen=True, repr=False)
class CustomerKey:
    """A customer-provided key (SSE-C) as a request sent it, its MD5 checked."""

    key: bytes
    #: The base64 MD5 of the key, as sent (S3 answers it back).
    md5: str

    def __repr__(self) -> str:  # never the key itself
        return f"CustomerKey(md5={self.md5!r})"


@dataclass(frozen=True)
class WriteEncryption:
    """What a write asks for: the headers to keep with the version (`{SSE: "AES256"}` or
    none), and the customer key to write it under (SSE-C), if any."""

    headers: dict[str, str]
    customer: CustomerKey | None = None
    #: The headers are the bucket's default encryption, not the request's (it asked nothing).
    default: bool = False

    @property
    def key(self) -> bytes | None:
        return self.customer.key if self.customer is not None else None

    @property
    def asked(self) -> bool:
        """Whether the request asks for an encryption (a change, for a copy onto itself)."""
        return not self.default and (bool(self.headers) or self.customer is not None)


def customer_key(head: RequestHead, prefix: str = SSE) -> CustomerKey | None:
    """The SSE-C key of a request (of a copy's source with prefix COPY_SOURCE), or None when
    it sends none; InvalidArgument if the three headers are incomplete or do not agree."""
    names = [f"{prefix}-customer-{part}" for part in ("algorithm", "key", "key-md5")]
    algorithm, key, md5 = (head.header(name) for name in names)
    if algorithm is None and key is None and md5 is None:
        return None
    if algorithm != AES256:
        raise errors.InvalidArgument(
            f"{_CUSTOMER_MESSAGE} provide a valid encryption algorithm (AES256).",
            ArgumentName=names[0], ArgumentValue=algorithm or "null",
        )  # fmt: skip
    if key is None:
        raise errors.InvalidArgument(
            f"{_CUSTOMER_MESSAGE} provide an appropriate secret key.",
            ArgumentName=names[1], ArgumentValue="null",
        )  # fmt: skip
    raw = _base64(key)
    if raw is None or len(raw) != 32:
        raise errors.InvalidArgument(
            "The secret key was invalid for the specified algorithm: AES256 takes a 256-bit "
            "key, base64-encoded.",
            ArgumentName=names[1], ArgumentValue="(not shown)",
        )  # fmt: skip
    if md5 is None:
        raise errors.InvalidArgument(
            f"{_CUSTOMER_MESSAGE} provide the client calculated MD5 of the secret key.",
            ArgumentName=names[2], ArgumentValue="null",
        )  # fmt: skip
    digest = _base64(md5)
    if digest is None or not hmac.compare_digest(digest, hashlib.md5(raw).digest()):
        raise errors.InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=names[2], ArgumentValue=md5,
        )  # fmt: skip
    return CustomerKey(raw, md5)


def _base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def bucket_key_id(bucket: str) -> str:
    """The key id answered for a version written as SSE-KMS without one: its bucket's key."""
    return f"{KEY_ARN_PREFIX}bucket/{bucket}"


def kms_key_id(bucket: str, asked: str | None, *, name: str = KMS_KEY_ID) -> str:
    """The key id a version written into `bucket` as SSE-KMS keeps and answers: the one asked
    if it names the bucket's key (kept as written, as S3 keeps an alias), else 400
    KMS.NotFoundException; none asked is the bucket's key."""
    if asked is None:
        return bucket_key_id(bucket)
    if asked.removeprefix(KEY_ARN_PREFIX) in (f"bucket/{bucket}", BUCKET_ALIAS):
        return asked
    raise errors.KMSNotFound(
        f"Invalid keyId {asked!r}: in Égide an SSE-KMS key id names the key of the bucket "
        f"written to, {bucket_key_id(bucket)} (or bucket/{bucket}, or {BUCKET_ALIAS}); "
        "nothing was stored.",
        ArgumentName=name, ArgumentValue=asked,
    )  # fmt: skip


def kms_headers(bucket: str, asked: str | None) -> dict[str, str]:
    """The headers an SSE-KMS version keeps: method, key id, and the bucket key S3 Bucket
    Keys are (Égide wraps every data key under its bucket's key)."""
    return {SSE: KMS, KMS_KEY_ID: kms_key_id(bucket, asked), BUCKET_KEY: "true"}


def write_encryption(head: RequestHead, bucket: str) -> WriteEncryption:
    """The encryption a write into `bucket` asks for (PutObject, a POST form's fields,
    CopyObject's target, CreateMultipartUpload): SSE-S3, SSE-KMS on the bucket's key, SSE-C;
    refuses what Égide cannot honour (501) and what S3 refuses (400)."""
    method = head.header(SSE)
    if method is not None and method not in (AES256, *KMS_METHODS):
        raise errors.InvalidArgument(
            f"The encryption method specified is not supported: {SSE} takes AES256 or aws:kms.",
            ArgumentName=SSE, ArgumentValue=method,
        )  # fmt: skip
    customer = [n for n in head.headers if n.startswith(f"{SSE}-customer-")]
    if method is not None and customer:
        raise errors.InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            f"encryption method specified ({SSE}: {method}).",
            ArgumentName=SSE, ArgumentValue=method,
        )  # fmt: skip
    kms_only = [n for n in (KMS_KEY_ID, KMS_CONTEXT, BUCKET_KEY) if n in head.headers]
    if kms_only and method not in KMS_METHODS:
        raise errors.InvalidArgument(
            f"Server Side Encryption with AWS KMS managed key requires HTTP header {SSE} : "
            "aws:kms",
            ArgumentName=kms_only[0], ArgumentValue=head.headers[kms_only[0]],
        )  # fmt: skip
    if method == "aws:kms:dsse":
        raise errors.NotImplementedOperation(
            f"Égide does not implement dual-layer SSE-KMS ({SSE}: aws:kms:dsse): nothing was "
            "stored. Send aws:kms (the bucket's key) or AES256."
        )
    if method == KMS:
        if KMS_CONTEXT in head.headers:
            raise errors.NotImplementedOperation(
                f"Égide does not implement SSE-KMS encryption contexts ({KMS_CONTEXT}): nothing "
                "was stored. Send aws:kms without a context."
            )
        enabled = head.header(BUCKET_KEY)
        if enabled is not None and enabled.lower() not in ("true", "false"):
            raise errors.InvalidArgument(
                f"{BUCKET_KEY} takes true or false.",
                ArgumentName=BUCKET_KEY, ArgumentValue=enabled,
            )  # fmt: skip
        if enabled is not None and enabled.lower() == "false":
            raise errors.NotImplementedOperation(
                f"Égide cannot write SSE-KMS without a bucket key ({BUCKET_KEY}: false): every "
                "data key is wrapped under its bucket's key. Nothing was stored; send true or "
                "leave the header out."
            )
        return WriteEncryption(kms_headers(bucket, head.header(KMS_KEY_ID)))
    return WriteEncryption({SSE: AES256} if method == AES256 else {}, customer_key(head))


def refuse_write_encryption(head: RequestHead, upload: Mapping[str, str] | None = None) -> None:
    """Requests that cannot choose an object's encryption (GET, HEAD, UploadPart, UploadPartCopy,
    CompleteMultipartUpload): S3 answers x-amz-server-side-encryption and the KMS headers with
    400 InvalidArgument. An UploadPart or a Complete may repeat its `upload`'s own SSE-S3 or
    SSE-KMS headers exactly (ceph/s3-tests sends them); any other value is refused, never
    ignored."""
    for name in (SSE, KMS_KEY_ID, KMS_CONTEXT, BUCKET_KEY):
        if name in head.headers:
            if upload is not None and upload.get(name) == head.headers[name]:
                continue
            if upload is not None and name in upload:
                raise errors.InvalidArgument(
                    f"{name} does not match the multipart upload's ({upload[name]}): a part "
                    "takes the encryption its upload was created with.",
                    ArgumentName=name, ArgumentValue=head.headers[name],
                )  # fmt: skip
            raise errors.InvalidArgument(
                f"{name} header is not supported for this operation.",
                ArgumentName=name, ArgumentValue=head.headers[name],
            )  # fmt: skip


_MISSING_FOR_OBJECT = (
    "The object was stored using a form of Server Side Encryption. The correct parameters must "
    "be provided to retrieve the object: it is under a customer-provided key (SSE-C), send it."
)
MISSING_FOR_UPLOAD = (
    "The multipart upload initiate requested encryption. Subsequent part requests must include "
    "the appropriate encryption parameters: its customer-provided key (SSE-C)."
)


def check_customer_key(
    key: CustomerKey | None, stored: Mapping[str, str], *, missing: str = _MISSING_FOR_OBJECT
) -> None:
    """Hold a request on a version (or upload: each part, the completion) to the customer key it
    was stored under, given its stored headers: without the key 400 InvalidRequest (`missing`
    says why), with another 400 InvalidArgument (ceph/s3-tests' answer, RGW's; decision 0027);
    a key for a version stored without one is 400 InvalidRequest, as S3 answers."""
    if under_customer_key(stored):
        if key is None:
            raise errors.InvalidRequest(missing)
        if key is not None and not matches(key.key, stored):
            raise errors.InvalidArgument(
                "The provided encryption parameters did not match the ones used originally: "
                "the customer-provided key (SSE-C) is not the one the object was stored under.",
                ArgumentName=f"{SSE}-customer-key", ArgumentValue="(not shown)",
            )  # fmt: skip
    elif key is not None:
        raise errors.InvalidRequest(
            "The encryption parameters are not applicable to this object: it is not stored "
            "under a customer-provided key."
        )


def response_headers(
    stored: Mapping[str, str], customer: CustomerKey | None = None
) -> dict[str, str]:
    """The encryption headers S3 answers for a version or upload stored with `stored`: SSE-S3's,
    SSE-KMS's key id, or SSE-C's algorithm and the MD5 of the key the request sent (never
    anything stored of it)."""
    answer = {name: stored[name] for name in (SSE, KMS_KEY_ID, BUCKET_KEY) if name in stored}
    if ALGORITHM_HEADER in stored:
        answer[ALGORITHM_HEADER] = stored[ALGORITHM_HEADER]
        if customer is not None:
            answer[KEY_MD5] = customer.md5
    return answer
