"""The decision by policies: the administrator may do everything but what a bucket policy
denies it explicitly, and never loses the bucket policy's own actions; another user has what
its policies grant, seen within a second of a change; the anonymous caller has only CORS
preflights until a bucket policy allows it more."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.auth.test_credentials import run_closing, settled
from tests.clocks import ManualClock

from egide.auth.authorize import ANONYMOUS, Principal, RequestContext
from egide.auth.decide import LIFETIME, PolicyDecision
from egide.auth.policy import Policy, PolicyKind, check_identity_policy, parse_policy
from egide.catalog.sqlite import SQLiteCatalog
from egide.crypto.keyring import Keyring
from egide.engine.events import EventBus
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
        await ids.put_policy(
            "group", "readers", "read", json.dumps(read), validate=check_identity_policy
        )
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


def test_a_policy_changed_through_this_worker_applies_at_once(tmp_path: Path) -> None:
    """Subscribed to the engine's events, the decision forgets the identity policies it read
    when one is attached or detached: no second to wait."""
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    ids = IdentityService(catalog, Keyring(bytes(range(32))), EventBus(), clock=clock)
    decide = PolicyDecision(catalog, clock=clock)
    ids.events.subscribe(decide.forget)
    carol = Principal(access_key="C", user="carol")
    read = json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}})

    async def scenario() -> None:
        await ids.create_user("carol")
        assert not await decide(carol, "s3:GetObject", OBJECT, CONTEXT)
        await ids.put_policy("user", "carol", "read", read, validate=check_identity_policy)
        await settled(ids.events)
        assert await decide(carol, "s3:GetObject", OBJECT, CONTEXT)  # the clock has not moved
        await ids.delete_policy("user", "carol", "read")
        await settled(ids.events)
        assert not await decide(carol, "s3:GetObject", OBJECT, CONTEXT)

    run_closing(scenario(), ids, catalog)


def test_a_session_has_its_roles_policies_limited_by_its_session_policy(tmp_path: Path) -> None:
    """A session: its role's policies, re-read within a second; a session policy limits them;
    a role deleted (or made again under its name) grants its old sessions nothing; a bucket
    policy naming the role names its sessions."""
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    ids = IdentityService(catalog, Keyring(bytes(range(32))), clock=clock)
    bucket_policy: list[Policy | None] = [None]

    async def lookup(resource: str) -> Policy | None:
        return bucket_policy[0]

    decide = PolicyDecision(catalog, bucket_policy=lookup, clock=clock)
    trust = '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}}'
    rw = {"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": "*"}}  # fmt: skip
    only_get = '{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}'

    async def scenario() -> None:
        role = await ids.create_role("writer", trust, 3600)
        session = Principal(access_key="ASIA1", session="s", role="writer", role_id=role.id)
        limited = Principal(access_key="ASIA2", session="s", role="writer", role_id=role.id,
                            session_policy=only_get)  # fmt: skip
        assert not await decide(session, "s3:GetObject", OBJECT, CONTEXT)  # no policy yet
        await ids.put_policy("role", "writer", "rw", json.dumps(rw), validate=check_identity_policy)
        clock.advance(LIFETIME)
        assert await decide(session, "s3:PutObject", OBJECT, CONTEXT)
        assert await decide(limited, "s3:GetObject", OBJECT, CONTEXT)
        assert not await decide(limited, "s3:PutObject", OBJECT, CONTEXT)  # the session policy
        assert not await decide(limited, "s3:DeleteObject", OBJECT, CONTEXT)
        account = await catalog.account_id()
        bucket_policy[0] = parse_policy(
            json.dumps({"Statement": {"Effect": "Deny", "Action": "s3:PutObject",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:role/writer"},
                        "Resource": "arn:aws:s3:::b/*"}}),
            PolicyKind.BUCKET, bucket="b",
        )  # fmt: skip
        assert not await decide(session, "s3:PutObject", OBJECT, CONTEXT)  # names its sessions
        bucket_policy[0] = None
        await ids.delete_role("writer")
        clock.advance(LIFETIME)
        assert not await decide(session, "s3:GetObject", OBJECT, CONTEXT)
        await ids.create_role("writer", trust, 3600)
        await ids.put_policy("role", "writer", "rw", json.dumps(rw), validate=check_identity_policy)
        clock.advance(LIFETIME)
        assert not await decide(session, "s3:GetObject", OBJECT, CONTEXT)  # another role

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


def test_a_session_is_decided_as_a_user_with_tags_and_grants(tmp_path: Path) -> None:
    """A session's policies see the object's tags; what they do not allow, the grants lookup
    (owners and ACLs) may; its session policy limits that too (decision 0037)."""
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    catalog.open()
    ids = IdentityService(catalog, Keyring(bytes(range(32))))
    asked: list[tuple[str | None, str]] = []
    tags = {"arn:aws:s3:::b/x": {"team": "x"}}

    async def grants(principal: Principal, action: str, resource: str, c: RequestContext) -> bool:
        asked.append((principal.session, action))
        return action == "s3:ListBucket"  # say, an AuthenticatedUsers READ on the bucket

    async def object_tags(resource: str, context: RequestContext) -> dict[str, str]:
        return tags.get(resource, {})

    decide = PolicyDecision(catalog, grants=grants, object_tags=object_tags)
    trust = '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}}'
    tagged = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
              "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "x"}}}}  # fmt: skip
    only_get = '{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}'

    async def scenario() -> None:
        role = await ids.create_role("reader", trust, 3600)
        await ids.put_policy(
            "role", "reader", "t", json.dumps(tagged), validate=check_identity_policy
        )
        session = Principal(access_key="ASIA1", session="s", role="reader", role_id=role.id)
        limited = Principal(access_key="ASIA2", session="l", role="reader", role_id=role.id,
                            session_policy=only_get)  # fmt: skip
        assert await decide(session, "s3:GetObject", "arn:aws:s3:::b/x", CONTEXT)
        assert asked == []  # the policy allowed: no ACL read
        assert not await decide(session, "s3:GetObject", "arn:aws:s3:::b/y", CONTEXT)
        assert await decide(session, "s3:ListBucket", BUCKET, CONTEXT)  # by the grant
        assert not await decide(limited, "s3:ListBucket", BUCKET, CONTEXT)  # limited
        assert asked == [("s", "s3:GetObject"), ("s", "s3:ListBucket"), ("l", "s3:ListBucket")]

    asyncio.run(scenario())
