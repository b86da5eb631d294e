"""The decision by policies: the administrator may do everything but what a bucket policy
denies it explicitly, and never loses the bucket policy's own actions; another user has what
its policies grant, seen within a second of a change; the anonymous caller has only CORS
preflights until a bucket policy allows it more."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.clocks import ManualClock

from egide.auth.authorize import ANONYMOUS, Principal, RequestContext
from egide.auth.decide import LIFETIME, PolicyDecision
from egide.auth.policy import Policy, PolicyKind, parse_policy
from egide.catalog.sqlite import SQLiteCatalog
from egide.crypto.keyring import Keyring
from egide.engine.identities import IdentityService

CONTEXT = RequestContext(request_time=datetime(2026, 12, 7, tzinfo=UTC))
OBJECT = "arn:aws:s3:::b/k"
BUCKET = "arn:aws:s3:::b"
DENY_ALL = parse_policy(
    json.dumps({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                              "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}}),
    PolicyKind.BUCKET, bucket="b",
)  # fmt: skip


def test_who_may_do_what(tmp_path: Path) -> None:
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    ids = IdentityService(catalog, Keyring(bytes(range(32))), clock=clock)
    bucket_policy: list[Policy | None] = [None]

    async def lookup(resource: str) -> Policy | None:
        return bucket_policy[0]

    decide = PolicyDecision(catalog, bucket_policy=lookup, clock=clock)
    admin = Principal(access_key="A", user="admin")
    alice = Principal(access_key="B", user="alice", groups=frozenset({"readers"}))

    async def scenario() -> None:
        await ids.create_user("alice")
        await ids.create_group("readers")
        assert await decide(admin, "s3:DeleteBucket", BUCKET, CONTEXT)
        assert await decide(admin, "egide:SubmitJob", "arn:egide:admin:::jobs", CONTEXT)
        assert not await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # default deny
        assert not await decide(ANONYMOUS, "s3:GetObject", OBJECT, CONTEXT)
        assert await decide(ANONYMOUS, "egide:CorsPreflight", OBJECT, CONTEXT)

        read = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
        await ids.put_policy("group", "readers", "read", json.dumps(read))
        clock.advance(LIFETIME / 2)
        assert not await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # cached still
        clock.advance(LIFETIME / 2)
        assert await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # its group's grant
        assert not await decide(alice, "s3:PutObject", OBJECT, CONTEXT)

        bucket_policy[0] = DENY_ALL
        assert not await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # a Deny wins
        assert not await decide(admin, "s3:GetObject", OBJECT, CONTEXT)
        assert await decide(ANONYMOUS, "egide:CorsPreflight", OBJECT, CONTEXT)  # not s3:*
        for mend in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
            assert await decide(admin, mend, BUCKET, CONTEXT)  # never locked out
            assert not await decide(alice, mend, BUCKET, CONTEXT)

    asyncio.run(scenario())


PUBLIC_READ = parse_policy(
    json.dumps({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Resource": "arn:aws:s3:::b/*"}}),
    PolicyKind.BUCKET, bucket="b",
)  # fmt: skip


def test_ownership_and_acls_decide_only_what_no_policy_did(tmp_path: Path) -> None:
    """The grants lookup (the S3 side's owners and ACLs) is asked only when no policy allowed
    and none denied explicitly; RestrictPublicBuckets takes a public policy's allow from the
    anonymous caller."""
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    catalog.open()
    bucket_policy: list[Policy | None] = [None]
    asked: list[tuple[str | None, str]] = []
    restricted = [False]

    async def lookup(resource: str) -> Policy | None:
        return bucket_policy[0]

    async def grants(principal: Principal, action: str, resource: str, c: RequestContext) -> bool:
        asked.append((principal.user, action))
        return action == "s3:GetObject"  # say, a public-read ACL

    async def restrict(resource: str) -> bool:
        return restricted[0]

    decide = PolicyDecision(catalog, bucket_policy=lookup, grants=grants, restricted=restrict)
    alice = Principal(access_key="B", user="alice")

    async def scenario() -> None:
        assert await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # by the ACL
        assert not await decide(ANONYMOUS, "s3:PutObject", OBJECT, CONTEXT)
        assert asked == [("alice", "s3:GetObject"), (None, "s3:PutObject")]
        assert await decide(Principal(access_key="A", user="admin"), "s3:GetObject", OBJECT,
                            CONTEXT)  # fmt: skip
        assert len(asked) == 2  # the administrator needs no ACL
        bucket_policy[0] = DENY_ALL
        assert not await decide(alice, "s3:GetObject", OBJECT, CONTEXT)  # a Deny wins
        assert len(asked) == 2  # and no ACL is read
        bucket_policy[0] = PUBLIC_READ
        assert await decide(ANONYMOUS, "s3:GetObject", OBJECT, CONTEXT)
        assert len(asked) == 2  # the policy allowed it
        restricted[0] = True
        asked.clear()
        assert await decide(ANONYMOUS, "s3:GetObject", OBJECT, CONTEXT)  # the ACL still may
        assert asked == [(None, "s3:GetObject")]

    asyncio.run(scenario())
