"""AWS Signature Version 4, in the Authorization header or in a presigned URL's query string.

Header auth: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
Presigned:   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
Shared by every mounted app (S3, admin API …); aws-chunked bodies, checksums and POST policies
are S3 payload matters and live in egide.s3.auth. Only AWS4-HMAC-SHA256 is accepted: SigV2 is
deprecated and SigV4a (ECDSA) is not implemented.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from urllib.parse import quote, unquote_to_bytes

from egide.auth.errors import (
    AccessDenied,
    AuthError,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from egide.web.errors import NotImplementedOperation
from egide.web.request import RequestHead

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
MAX_PRESIGN_EXPIRES = 604800  # one week
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

#: access key id -> secret access key, None when the key is unknown.
SecretLookup = Callable[[str], str | None]

_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SPACES = re.compile(r"[ \t]+")
_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{8}")
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")


class PayloadMode(Enum):
    """What x-amz-content-sha256 says about the body, hence how the body must be read."""

    UNSIGNED = "UNSIGNED-PAYLOAD"
    SIGNED = "SIGNED"  # the header holds the hex sha256 of the body
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def streaming(self) -> bool:
        return self.value.startswith("STREAMING-")


@dataclass(frozen=True)
class AuthResult:
    """An authenticated request, with what aws-chunked decoding needs to keep verifying."""

    access_key: str
    payload_mode: PayloadMode
    payload_sha256: str | None  # lower-case hex, for PayloadMode.SIGNED only
    signing_key: bytes
    seed_signature: str
    amz_date: str  # the request time as in the string to sign, e.g. 20130524T000000Z
    scope: str  # e.g. 20130524/us-east-1/s3/aws4_request


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """Derived once per key, day and region: four HMACs saved on every request."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def sign(key: bytes, string_to_sign: str | bytes) -> str:
    data = string_to_sign.encode() if isinstance(string_to_sign, str) else string_to_sign
    return hmac.new(key, data, "sha256").hexdigest()


def same_signature(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace"))


@dataclass(frozen=True)
class _Parsed:
    """The authentication parameters of a request, from its header or its query."""

    presigned: bool
    access_key: str
    date: str
    region: str
    signed_headers: str
    signature: str


def _to_bytes(text: str) -> bytes:
    """The bytes of a path or query decoded as latin-1 by the ASGI layer (or built by hand)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _uri_encode(raw: bytes, safe: str) -> str:
    # quote() leaves exactly A-Z a-z 0-9 - _ . ~ unescaped, plus `safe`: the SigV4 rule.
    return quote(raw, safe=safe)


def _query_pairs(head: RequestHead) -> list[tuple[bytes, bytes]]:
    """Decoded query pairs as bytes; '+' stays '+' (S3 clients encode a space as %20)."""
    if not head.raw_query and head.query:
        return [(k.encode(), v.encode()) for k, v in head.query]
    pairs = []
    for part in head.raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote_to_bytes(_to_bytes(key)), unquote_to_bytes(_to_bytes(value))))
    return pairs


def canonical_uri(raw_path: str) -> str:
    """The decoded path re-encoded once: S3 does not double-encode nor normalise it."""
    return _uri_encode(unquote_to_bytes(_to_bytes(raw_path or "/")), safe="/")


def canonical_query(pairs: list[tuple[bytes, bytes]], *, presigned: bool) -> str:
    encoded = sorted(
        (_uri_encode(k, safe=""), _uri_encode(v, safe=""))
        for k, v in pairs
        if not (presigned and k == b"X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def _header_value(value: str) -> str:
    # "Trimall": strip, and collapse runs of spaces into one.
    return _SPACES.sub(" ", value.strip(" \t"))


def _malformed(presigned: bool, message: str) -> AuthError:
    if presigned:
        return AuthorizationQueryParametersError(message)
    return AuthorizationHeaderMalformed(message)


def _parse_header(value: str, service: str = SERVICE) -> _Parsed:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS":
            raise InvalidArgument(
                "AWS Signature Version 2 is not supported; please use AWS4-HMAC-SHA256.",
                ArgumentName="Authorization",
                ArgumentValue=value,
            )
        raise InvalidArgument(
            f"Unsupported authorization type {algorithm!r}; only AWS4-HMAC-SHA256 is supported.",
            ArgumentName="Authorization",
            ArgumentValue=value,
        )
    params: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            params[key.strip()] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not params.get(k)]
    if missing:
        raise AuthorizationHeaderMalformed(
            f"The authorization header is malformed; missing {', '.join(missing)}."
        )
    access_key, date, region = _parse_credential(
        params["Credential"], presigned=False, service=service
    )
    return _Parsed(False, access_key, date, region, params["SignedHeaders"], params["Signature"])


def _parse_credential(
    credential: str, *, presigned: bool, service: str = SERVICE
) -> tuple[str, str, str]:
    where = (
        "Error parsing the X-Amz-Credential parameter"
        if presigned
        else "The authorization header is malformed"
    )
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or not _DATE.fullmatch(parts[1]):
        raise _malformed(
            presigned,
            f'{where}; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/'
            f'SERVICE/aws4_request".',
        )
    access_key, date, region, named, terminator = parts
    if named != service:
        raise _malformed(
            presigned,
            f'{where}; incorrect service "{named}". This endpoint belongs to "{service}".',
        )
    if terminator != TERMINATOR:
        raise _malformed(
            presigned,
            f'{where}; incorrect terminal "{terminator}". This endpoint uses "aws4_request".',
        )
    return access_key, date, region


def _parse_query(params: dict[str, str]) -> tuple[_Parsed, int, str]:
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                "X-Amz-SignedHeaders", "X-Amz-Expires")  # fmt: skip
    if not all(params.get(name) for name in required):
        raise AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise InvalidArgument(
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".',
            ArgumentName="X-Amz-Algorithm",
            ArgumentValue=params["X-Amz-Algorithm"],
        )
    raw_expires = params["X-Amz-Expires"]
    if not _DIGITS.fullmatch(raw_expires):
        if raw_expires.startswith("-") and _DIGITS.fullmatch(raw_expires[1:]):
            raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires > MAX_PRESIGN_EXPIRES:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds"
        )
    access_key, date, region = _parse_credential(params["X-Amz-Credential"], presigned=True)
    parsed = _Parsed(
        True, access_key, date, region, params["X-Amz-SignedHeaders"], params["X-Amz-Signature"]
    )
    return parsed, expires, params["X-Amz-Date"]


def _request_time(value: str | None, date_header: str | None) -> tuple[datetime, str]:
    """The request time and its x-amz-date form; x-amz-date wins over Date."""
    try:
        if value is not None:
            if not _AMZ_DATE.fullmatch(value):
                raise ValueError(value)
            # Fixed form 20261123T060000Z; parsed by hand, strptime is slow on every request.
            when = datetime(
                int(value[0:4]), int(value[4:6]), int(value[6:8]),
                int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC,
            )  # fmt: skip
            return when, value
        if date_header is not None:
            when = parsedate_to_datetime(date_header)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            return when, when.strftime(_AMZ_DATE_FORMAT)
    except (ValueError, TypeError, IndexError):
        pass
    raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload_mode(value: str | None, presigned: bool) -> tuple[PayloadMode, str | None]:
    if value is None:
        if presigned:
            return PayloadMode.UNSIGNED, None
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    if _SHA256_HEX.fullmatch(value):
        return PayloadMode.SIGNED, value.lower()
    try:
        mode = PayloadMode(value)
    except ValueError:
        mode = None
    if mode is not None and mode is not PayloadMode.SIGNED:
        if presigned and mode.streaming:
            raise InvalidArgument("Presigned URLs cannot carry aws-chunked bodies.")
        return mode, None
    if value.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise NotImplementedOperation(f"Don't know how to validate {value} streams")
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
        "valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def _canonical_headers(head: RequestHead, names: list[str]) -> tuple[str, bool]:
    """The canonical header block, and whether every signed header is present."""
    lines = []
    complete = True
    for name in names:
        value = head.headers.get(name)
        if value is None and name == "expect":
            # Some proxies and servers swallow `Expect: 100-continue` (MinIO does the same).
            value = "100-continue"
        if value is None:
            complete = False
            value = ""
        lines.append(f"{name}:{_header_value(value)}\n")
    return "".join(lines), complete


def authenticate(
    head: RequestHead,
    secrets: SecretLookup,
    *,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=15),
    service: str = SERVICE,
    body_sha256: str | None = None,
) -> AuthResult | None:
    """Verify the SigV4 signature of a request; None when the request is anonymous.

    Raises the error AWS would return (egide.auth.errors). The body is not read here: the
    caller checks it according to `AuthResult.payload_mode` (see egide.s3.auth.streaming).
    Other services (STS) sign with their own name in the scope and hash a body their caller
    has read (`body_sha256`); their clients send no x-amz-content-sha256, only header auth.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    pairs = _query_pairs(head)
    params = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in pairs}
    authorization = head.header("authorization")
    presigned = any(name in params for name in _PRESIGN_PARAMS)
    if authorization is not None and presigned:
        raise InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization",
            ArgumentValue=authorization,
        )
    if authorization is None and not presigned:
        if "AWSAccessKeyId" in params and "Signature" in params:
            raise InvalidArgument(
                "AWS Signature Version 2 is not supported; please use AWS4-HMAC-SHA256.",
                ArgumentName="Signature",
                ArgumentValue=params["Signature"],
            )
        return None

    expires = 0
    if authorization is not None:
        parsed = _parse_header(authorization, service)
        when, amz_date = _request_time(head.header("x-amz-date"), head.header("date"))
        mode, payload_sha256 = (
            (PayloadMode.SIGNED, body_sha256)
            if body_sha256 is not None
            else _payload_mode(head.header("x-amz-content-sha256"), False)
        )
    elif service != SERVICE:
        raise InvalidRequest(f"{service} requests are signed in the Authorization header.")
    else:
        parsed, expires, raw_date = _parse_query(params)
        when, amz_date = _request_time(raw_date, None)
        mode, payload_sha256 = _payload_mode(params.get("X-Amz-Content-Sha256"), True)
    if parsed.date != amz_date[:8]:
        raise _malformed(
            parsed.presigned,
            f'Invalid credential date "{parsed.date}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".',
        )

    names = parsed.signed_headers.split(";")
    if not all(names) or "host" not in names or any(n != n.lower() for n in names):
        raise _malformed(
            parsed.presigned,
            "SignedHeaders must be a ;-separated list of lower-case header names including host",
        )
    unsigned = sorted(
        name
        for name in head.headers
        if name.startswith("x-amz-") and name != "x-amz-content-sha256" and name not in names
    )
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )

    if parsed.presigned:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
        if when > now + max_skew:
            raise AccessDenied("Request is not valid yet")
        # Valid from `when` for `expires` seconds, the last excluded: a URL of 0 s (in AWS's
        # range, 0 to a week) is expired from the start.
        expiry = when + timedelta(seconds=expires)
        if now >= expiry:
            raise AccessDenied(
                "Request has expired",
                **{"X-Amz-Expires": str(expires), "Expires": _iso(expiry)},
                ServerTime=_iso(now),
            )
    elif abs(now - when) > max_skew:
        raise RequestTimeTooSkewed(
            RequestTime=head.header("x-amz-date") or head.header("date") or "",
            ServerTime=_iso(now),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)),
        )

    secret = secrets(parsed.access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=parsed.access_key)

    headers_block, complete = _canonical_headers(head, names)
    hashed_payload = (
        (body_sha256 or head.header("x-amz-content-sha256"))
        if not parsed.presigned
        else params.get("X-Amz-Content-Sha256", PayloadMode.UNSIGNED.value)
    )
    canonical_request = "\n".join(
        [
            head.method,
            canonical_uri(head.raw_path),
            canonical_query(pairs, presigned=parsed.presigned),
            headers_block,
            parsed.signed_headers,
            hashed_payload or "",
        ]
    )
    scope = f"{parsed.date}/{parsed.region}/{service}/{TERMINATOR}"
    key = signing_key(secret, parsed.date, parsed.region, service)
    # Header values are the bytes received (decoded as latin-1), and AWS hashes those bytes.
    digest = hashlib.sha256(_to_bytes(canonical_request)).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    ok = same_signature(sign(key, string_to_sign), parsed.signature)
    if not ok or not complete:
        raise SignatureDoesNotMatch(
            AWSAccessKeyId=parsed.access_key,
            StringToSign=string_to_sign,
            SignatureProvided=parsed.signature,
            CanonicalRequest=canonical_request,
        )
    return AuthResult(
        access_key=parsed.access_key,
        payload_mode=mode,
        payload_sha256=payload_sha256,
        signing_key=key,
        seed_signature=parsed.signature,
        amz_date=amz_date,
        scope=scope,
    )


class SignedPayloadVerifier:
    """Check a body against the hex sha256 its x-amz-content-sha256 header announced."""

    def __init__(self, expected_sha256: str) -> None:
        self.expected_sha256 = expected_sha256.lower()
        self._hash = hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def verify(self) -> None:
        computed = self._hash.hexdigest()
        if not same_signature(computed, self.expected_sha256):
            raise XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=self.expected_sha256,
                S3ComputedContentSHA256=computed,
            )

    async def wrap(self, source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Pass `source` through, raising at its end if the hash does not match."""
        async for piece in source:
            self._hash.update(piece)
            yield piece
        self.verify()
