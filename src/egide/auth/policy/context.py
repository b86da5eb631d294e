"""The condition keys of one request: AWS's global keys from `RequestContext` and the caller,
then the service's keys (s3:prefix, s3:x-amz-acl, s3:ExistingObjectTag/<k> …) as given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC

from egide.auth.authorize import RequestContext
from egide.auth.policy.principals import Caller


def condition_keys(
    context: RequestContext,
    caller: Caller,
    service_keys: Mapping[str, str | Sequence[str]] | None = None,
) -> dict[str, str | Sequence[str]]:
    """key → value(s) for `evaluate`; a key the request does not have is absent, as in AWS."""
    moment = context.request_time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    keys: dict[str, str | Sequence[str]] = {
        "aws:CurrentTime": moment.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z",
        "aws:EpochTime": str(int(moment.timestamp())),
        "aws:SecureTransport": "true" if context.secure_transport else "false",
        "aws:PrincipalType": caller.principal_type,
    }
    optional = {
        "aws:SourceIp": context.source_ip,
        "aws:UserAgent": context.user_agent,
        "aws:PrincipalArn": caller.arn,
        "aws:PrincipalAccount": caller.account,
        "aws:username": caller.username,
        "aws:userid": caller.userid,
    }
    keys.update({k: v for k, v in optional.items() if v is not None})
    keys.update(context.keys)
    if service_keys:
        keys.update(service_keys)
    return keys
