"""The SigV4 POST policy of a browser form upload: its signature, expiry and conditions.

https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html
Pure functions over the form's fields: no I/O, so every rule is tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from egide.auth.sigv4 import ALGORITHM, SERVICE, TERMINATOR, same_signature, sign, signing_key
from egide.s3 import errors

#: Form fields a policy need not mention (the doc's list, plus the bucket that is in the URL).
EXEMPT_FIELDS = frozenset({"x-amz-signature", "file", "policy", "bucket"})


@dataclass(frozen=True)
class Credential:
    access_key: str
    date: str
    region: str


@dataclass(frozen=True)
class Condition:
    """One policy condition: `eq` or `starts-with` on a field, or `content-length-range`."""

    operator: str
    field: str  # lower-case, without the "$"
    value: str = ""
    low: int = 0
    high: int = 0

    def text(self) -> str:
        """The condition as S3 quotes it in an error message."""
        if self.operator == "content-length-range":
            return json.dumps([self.operator, self.low, self.high])
        return json.dumps([self.operator, "$" + self.field, self.value])

    def holds(self, fields: Mapping[str, str]) -> bool:
        # A field the form does not have counts as empty: starts-with "" accepts it.
        actual = fields.get(self.field, "")
        if self.operator == "eq":
            return actual == self.value
        return actual.startswith(self.value)


def _invalid(reason: str) -> errors.S3Error:
    return errors.InvalidPolicyDocument(f"Invalid Policy: {reason}")


def _policy_error(reason: str) -> errors.S3Error:
    return errors.AccessDenied(f"Invalid according to Policy: {reason}")


def _length(value: Any) -> int:
    if isinstance(value, bool):
        raise _invalid("Invalid content-length-range.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid("Invalid content-length-range.") from None


def _condition(item: Any) -> list[Condition]:
    if isinstance(item, dict):
        if not all(isinstance(v, str) for v in item.values()):
            raise _invalid("Invalid Simple-Condition: value must be a string.")
        return [Condition("eq", str(name).lower(), value) for name, value in item.items()]
    if not isinstance(item, list) or len(item) != 3:
        raise _invalid("Invalid Condition: a condition is an object or a list of three items.")
    operator = str(item[0]).lower()
    if operator == "content-length-range":
        low, high = _length(item[1]), _length(item[2])
        if low < 0 or high < low:
            raise _invalid("Invalid content-length-range.")
        return [Condition(operator, "content-length", low=low, high=high)]
    if operator not in ("eq", "starts-with"):
        raise _invalid(f"Unknown condition operator: {item[0]}.")
    name, value = item[1], item[2]
    if not isinstance(name, str) or not name.startswith("$") or not isinstance(value, str):
        raise _invalid(f"Invalid condition: {json.dumps(item)}.")
    return [Condition(operator, name[1:].lower(), value)]


def _expiration(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _invalid("Policy missing expiration.")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"Invalid 'expiration' value: '{value}'.") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


@dataclass(frozen=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[Condition, ...]

    @classmethod
    def decode(cls, encoded: str) -> PostPolicy:
        """The policy document of a form's `policy` field (base64 of a JSON object)."""
        try:
            document = json.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise _invalid("Invalid JSON.") from None
        if not isinstance(document, dict):
            raise _invalid("Invalid JSON.")
        conditions = document.get("conditions")
        if not isinstance(conditions, list):
            raise _invalid("Policy missing conditions.")
        parsed = [c for item in conditions for c in _condition(item)]
        return cls(_expiration(document.get("expiration")), tuple(parsed))

    def check(self, fields: Mapping[str, str], now: datetime) -> None:
        """Expiry, every condition on the fields, and no field the policy does not cover.

        `fields` has lower-case names and includes `bucket`; the size is checked later, once
        the file has been received (see `check_length`).
        """
        if now >= self.expiration:
            raise _policy_error("Policy expired.")
        for condition in self.conditions:
            if condition.operator != "content-length-range" and not condition.holds(fields):
                raise _policy_error(f"Policy Condition failed: {condition.text()}")
        covered = {c.field for c in self.conditions}
        extra = [
            name
            for name in fields
            if name not in covered
            and name not in EXEMPT_FIELDS
            and not name.startswith("x-ignore-")
        ]
        if extra:
            raise _policy_error("Extra input fields: " + ", ".join(extra))

    def length_range(self) -> tuple[int, int] | None:
        """The tightest content-length-range of the policy, if it has one."""
        ranges = [(c.low, c.high) for c in self.conditions if c.operator == "content-length-range"]
        if not ranges:
            return None
        return max(low for low, _ in ranges), min(high for _, high in ranges)

    def check_length(self, size: int) -> None:
        bounds = self.length_range()
        if bounds is None:
            return
        low, high = bounds
        if size < low:
            raise errors.EntityTooSmall(
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=str(size), MinSizeAllowed=str(low),
            )  # fmt: skip
        if size > high:
            raise errors.EntityTooLarge(
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=str(size), MaxSizeAllowed=str(high),
            )  # fmt: skip


def missing_field(name: str) -> errors.S3Error:
    return errors.InvalidArgument(
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check "
        "the order of the fields.",
        ArgumentName=name,
        ArgumentValue="",
    )


def credential(fields: Mapping[str, str]) -> Credential:
    """The x-amz-credential of a SigV4 form, checked against x-amz-algorithm and x-amz-date."""
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if not fields.get(name):
            raise missing_field(name)
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise errors.InvalidArgument(
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".',
            ArgumentName="x-amz-algorithm",
            ArgumentValue=fields["x-amz-algorithm"],
        )
    parts = fields["x-amz-credential"].split("/")
    if (
        len(parts) != 5
        or not all(parts)
        or parts[3] != SERVICE
        or parts[4] != TERMINATOR
        or parts[1] != fields["x-amz-date"][:8]
    ):
        raise errors.InvalidArgument(
            'Error parsing the X-Amz-Credential parameter; expecting "<YOUR-AKID>/YYYYMMDD/'
            'REGION/s3/aws4_request" dated as x-amz-date.',
            ArgumentName="x-amz-credential",
            ArgumentValue=fields["x-amz-credential"],
        )
    return Credential(parts[0], parts[1], parts[2])


def verify_signature(fields: Mapping[str, str], cred: Credential, secret: str) -> None:
    """x-amz-signature must be the HMAC of the base64 policy under the credential's key."""
    key = signing_key(secret, cred.date, cred.region)
    expected = sign(key, fields["policy"])
    if not same_signature(expected, fields["x-amz-signature"]):
        raise errors.SignatureDoesNotMatch(
            AWSAccessKeyId=cred.access_key,
            StringToSign=fields["policy"],
            SignatureProvided=fields["x-amz-signature"],
        )
