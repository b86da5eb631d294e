"""ACL values: canonical IDs, canned ACLs, x-amz-grant-* headers, AccessControlPolicy
documents (parsed and rendered), and what a grant allows."""

from __future__ import annotations

import pytest

from egide.s3 import errors
from egide.s3.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    Acl,
    Grant,
    Owner,
    canned,
    canonical_id,
    parse_policy,
    private,
    requested,
)
from egide.web.request import RequestHead

ALICE = Owner(canonical_id("123456789012", "AIDAALICE"), "alice")
BOB = Owner(canonical_id("123456789012", "AIDABOB"), "bob")


def head(**headers: str) -> RequestHead:
    return RequestHead("PUT", "/b/k", headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_canonical_id_is_64_hex_digits_and_the_users_own() -> None:
    assert len(ALICE.id) == 64 and int(ALICE.id, 16) >= 0 and ALICE.id == ALICE.id.lower()
    assert ALICE.id == canonical_id("123456789012", "AIDAALICE")
    assert ALICE.id != BOB.id
    assert ALICE.id != canonical_id("210987654321", "AIDAALICE")


def test_canned_acls_grant_what_s3_grants() -> None:
    assert canned("private", ALICE) == private(ALICE)
    public = canned("public-read", ALICE)
    assert public.public and public.allows(frozenset({"READ"}), None)
    assert not public.allows(frozenset({"WRITE"}), None)
    assert canned("public-read-write", ALICE).allows(frozenset({"WRITE"}), None)
    auth = canned("authenticated-read", ALICE)
    assert auth.allows(frozenset({"READ"}), BOB.id) and not auth.allows(frozenset({"READ"}), None)
    full = canned("bucket-owner-full-control", ALICE, BOB)
    assert full.allows(frozenset({"WRITE_ACP"}), BOB.id)
    read = canned("bucket-owner-read", ALICE, BOB)
    assert read.allows(frozenset({"READ"}), BOB.id)
    assert not read.allows(frozenset({"READ_ACP"}), BOB.id)
    with pytest.raises(errors.InvalidArgument):
        canned("world-writable", ALICE)


def test_ignoring_public_grants_leaves_the_others() -> None:
    acl = Acl(ALICE, (Grant("group", ALL_USERS, "READ"), Grant("id", BOB.id, "READ")))
    assert not acl.allows(frozenset({"READ"}), None, ignore_public=True)
    assert acl.allows(frozenset({"READ"}), BOB.id, ignore_public=True)


def test_grant_headers_are_parsed_and_checked() -> None:
    acl = requested(
        head(x_amz_grant_read=f'id="{BOB.id}", uri="{AUTHENTICATED_USERS}"',
             x_amz_grant_write_acp=f"id={BOB.id}"),
        ALICE,
    )  # fmt: skip
    assert acl is not None and set(acl.grants) == {
        Grant("id", BOB.id, "READ"),
        Grant("group", AUTHENTICATED_USERS, "READ"),
        Grant("id", BOB.id, "WRITE_ACP"),
    }
    assert requested(head(), ALICE) is None
    with pytest.raises(errors.UnresolvableGrantByEmailAddress):
        requested(head(x_amz_grant_read="emailAddress=bob@example.org"), ALICE)
    with pytest.raises(errors.InvalidArgument):
        requested(head(x_amz_grant_read="id=not-an-id"), ALICE)
    with pytest.raises(errors.InvalidRequest):
        requested(head(x_amz_acl="private", x_amz_grant_read=f"id={BOB.id}"), ALICE)


def test_an_access_control_policy_round_trips() -> None:
    acl = Acl(ALICE, (Grant("id", ALICE.id, "FULL_CONTROL"), Grant("group", ALL_USERS, "READ")))
    body = acl.xml({ALICE.id: "alice"})
    assert b"<DisplayName>alice</DisplayName>" in body and b'xsi:type="Group"' in body
    parsed = parse_policy(body, ALICE)
    assert parsed.owner == ALICE and set(parsed.grants) == set(acl.grants)
    assert parsed.grants[0].kind == "group"  # groups first, as RGW (s3-tests compares order)
    assert Acl.from_stored(ALICE, acl.stored()) == acl
    assert Acl.from_stored(ALICE, None) == private(ALICE)


@pytest.mark.parametrize(
    "body",
    [
        b"<nope/>",
        b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission>"
        b"</Grant></AccessControlList></AccessControlPolicy>",
        b"<AccessControlPolicy><AccessControlList><Grant><Grantee "
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">'
        b"<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
        b"<Permission>EVERYTHING</Permission></Grant></AccessControlList></AccessControlPolicy>",
        b"not xml",
    ],
)
def test_a_malformed_policy_is_malformed_acl_error(body: bytes) -> None:
    with pytest.raises(errors.MalformedACLError):
        parse_policy(body, ALICE)


def test_a_policy_cannot_change_the_owner() -> None:
    body = private(BOB).xml({})
    with pytest.raises(errors.AccessDenied):
        parse_policy(body, ALICE)
