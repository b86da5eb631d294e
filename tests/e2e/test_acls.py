"""Owners, ACLs, Object Ownership and Public Access Block through real clients against a real
server: every Owner shown is the real one; the bucket owner has full control; canned ACLs
and grants allow the second user and anonymous callers exactly what they grant; a public-read
bucket serves a plain unsigned GET; BucketOwnerEnforced refuses ACLs as AWS does; each Public
Access Block flag does what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.conftest import Server
from tests.e2e.test_bucket_policies import public_read, soon
from tests.e2e.test_policies import allow, code, new_user, policy

CREATOR = policy(allow("s3:CreateBucket", "s3:ListAllMyBuckets"))
_USERS: dict[str, tuple[Any, str]] = {}


def user(server: Server, name: str, tmp: Path) -> tuple[Any, str]:
    """A user that may create buckets (and nothing else by policy), its client and ID."""
    key = (str(server.data_dir), name)
    if key not in _USERS:
        s3, _ = new_user(server, name, tmp, creator=CREATOR)
        _USERS[key] = (s3, s3.list_buckets()["Owner"]["ID"])  # type: ignore[index]
    return _USERS[key]  # type: ignore[index]


@pytest.fixture
def alice(shared_server: Server, tmp_path: Path) -> tuple[Any, str]:
    return user(shared_server, "alice", tmp_path)


@pytest.fixture
def bob(shared_server: Server, tmp_path: Path) -> tuple[Any, str]:
    return user(shared_server, "bob", tmp_path)


def test_owners_are_the_real_users(shared_server: Server, alice: Any, bob: Any) -> None:
    s3, alice_id = alice
    admin = shared_server.client()
    assert re.fullmatch(r"[0-9a-f]{64}", alice_id)
    assert admin.list_buckets()["Owner"]["DisplayName"] == "admin"
    assert admin.list_buckets()["Owner"]["ID"] not in (alice_id, bob[1])
    s3.create_bucket(Bucket="alice-owned")
    admin.create_bucket(Bucket="admin-owned")
    listed = s3.list_buckets()
    assert listed["Owner"] == {"ID": alice_id, "DisplayName": "alice"}
    assert [b["Name"] for b in listed["Buckets"]] == ["alice-owned"]  # not admin's, not bob's
    assert "alice-owned" in [b["Name"] for b in admin.list_buckets()["Buckets"]]
    s3.put_object(Bucket="alice-owned", Key="k", Body=b"x")
    owner = {"ID": alice_id, "DisplayName": "alice"}
    assert (
        s3.list_objects_v2(Bucket="alice-owned", FetchOwner=True)["Contents"][0]["Owner"] == owner
    )
    assert s3.list_objects(Bucket="alice-owned")["Contents"][0]["Owner"] == owner
    assert s3.list_object_versions(Bucket="alice-owned")["Versions"][0]["Owner"] == owner
    s3.create_multipart_upload(Bucket="alice-owned", Key="mp")
    upload = s3.list_multipart_uploads(Bucket="alice-owned")["Uploads"][0]
    assert upload["Initiator"] == owner and upload["Owner"] == owner
    parts = s3.list_parts(Bucket="alice-owned", Key="mp", UploadId=upload["UploadId"])
    assert parts["Initiator"] == owner
    assert s3.get_bucket_acl(Bucket="alice-owned")["Owner"] == owner
    assert admin.get_object_acl(Bucket="alice-owned", Key="k")["Owner"] == owner
    # bob may not touch alice's bucket, nor take its name
    other = bob[0]
    assert code(other.list_objects_v2, Bucket="alice-owned") == "AccessDenied"
    assert code(other.create_bucket, Bucket="alice-owned") == "BucketAlreadyExists"
    assert code(s3.create_bucket, Bucket="alice-owned") == "ok"  # us-east-1: 200 to its owner


def test_a_user_without_create_bucket_may_not_create(shared_server: Server, tmp_path: Path) -> None:
    s3, _ = new_user(shared_server, "nocreate", tmp_path)
    assert code(s3.create_bucket, Bucket="nocreate-bucket") == "AccessDenied"


def _bucket(s3: Any, name: str, **extra: Any) -> None:
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter", **extra)


@pytest.mark.parametrize(
    ("bucket_acl", "object_acl", "expected"),
    [
        # (bob get, bob list, bob put, anonymous get, anonymous list, anonymous put)
        ("private", "private", ("AccessDenied",) * 6),
        ("private", "public-read", ("ok", "AccessDenied", "AccessDenied", "ok", "AccessDenied",
                                    "AccessDenied")),
        ("public-read", "private", ("AccessDenied", "ok", "AccessDenied", "AccessDenied", "ok",
                                    "AccessDenied")),
        ("public-read-write", "private", ("AccessDenied", "ok", "ok", "AccessDenied", "ok", "ok")),
        ("authenticated-read", "authenticated-read", ("ok", "ok", "AccessDenied", "AccessDenied",
                                                      "AccessDenied", "AccessDenied")),
    ],
)  # fmt: skip
def test_the_acl_matrix(
    shared_server: Server,
    alice: Any,
    bob: Any,
    bucket_acl: str,
    object_acl: str,
    expected: tuple[str, ...],
) -> None:
    s3 = alice[0]
    name = f"matrix-{bucket_acl}-{object_acl}".replace("_", "-")[:60]
    _bucket(s3, name, ACL=bucket_acl)
    s3.put_object(Bucket=name, Key="obj", Body=b"data", ACL=object_acl)
    other = bob[0]
    url = f"{shared_server.endpoint}/{name}"

    def anon(method: str, path: str) -> str:
        answer = requests.request(method, url + path, data=b"z" if method == "PUT" else None,
                                  timeout=10)  # fmt: skip
        return "ok" if answer.status_code == 200 else ("AccessDenied" if answer.status_code == 403
                                                       else str(answer.status_code))  # fmt: skip

    got = (
        code(other.get_object, Bucket=name, Key="obj"),
        code(other.list_objects_v2, Bucket=name),
        code(other.put_object, Bucket=name, Key="bob", Body=b"b"),
        anon("GET", "/obj"),
        anon("GET", ""),
        anon("PUT", "/anon"),
    )
    assert got == expected
    # the owner keeps full control whatever the ACLs
    assert code(s3.get_object, Bucket=name, Key="obj") == "ok"
    assert code(s3.put_bucket_acl, Bucket=name, ACL="private") == "ok"


def test_grants_and_acl_subresources(alice: Any, bob: Any) -> None:
    s3, alice_id = alice
    other, bob_id = bob
    _bucket(s3, "grants-b")
    s3.put_object(Bucket="grants-b", Key="k", Body=b"v", GrantRead=f"id={bob_id}")
    assert code(other.get_object, Bucket="grants-b", Key="k") == "ok"
    assert code(other.get_object_acl, Bucket="grants-b", Key="k") == "AccessDenied"
    grants = s3.get_object_acl(Bucket="grants-b", Key="k")["Grants"]
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in grants} == {(bob_id, "READ")}
    s3.put_object_acl(
        Bucket="grants-b", Key="k",
        AccessControlPolicy={
            "Owner": {"ID": alice_id},
            "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": bob_id},
                        "Permission": "READ_ACP"}],
        },
    )  # fmt: skip
    assert code(other.get_object, Bucket="grants-b", Key="k") == "AccessDenied"
    assert code(other.get_object_acl, Bucket="grants-b", Key="k") == "ok"
    s3.put_bucket_acl(Bucket="grants-b", GrantWrite=f"id={bob_id}")
    # every worker applies a changed bucket ACL within a second
    soon(lambda: code(other.put_object, Bucket="grants-b", Key="bobs", Body=b"b") == "ok")
    # bob wrote it, so bob owns it under ObjectWriter, and its ACL is bob's; alice (the bucket
    # owner) still reads and deletes it
    assert other.get_object_acl(Bucket="grants-b", Key="bobs")["Owner"]["ID"] == bob_id
    assert code(s3.get_object_acl, Bucket="grants-b", Key="bobs") == "AccessDenied"
    assert code(s3.get_object, Bucket="grants-b", Key="bobs") == "ok"
    assert code(s3.put_object, Bucket="grants-b", Key="e", Body=b"",
                GrantRead="emailAddress=a@b.c") == "UnresolvableGrantByEmailAddress"  # fmt: skip


def test_a_public_read_bucket_serves_a_plain_get(shared_server: Server, alice: Any) -> None:
    s3 = alice[0]
    _bucket(s3, "acl-public", ACL="public-read")
    s3.put_object(Bucket="acl-public", Key="page.html", Body=b"<p>hi</p>", ACL="public-read")
    answer = requests.get(f"{shared_server.endpoint}/acl-public/page.html", timeout=10)
    assert answer.status_code == 200 and answer.content == b"<p>hi</p>"
    assert "x-egide-owner" not in answer.headers and "x-egide-acl" not in answer.headers


def test_bucket_owner_enforced_refuses_acls(alice: Any, bob: Any) -> None:
    s3, alice_id = alice
    s3.create_bucket(Bucket="enforced-b")  # the default
    rules = s3.get_bucket_ownership_controls(Bucket="enforced-b")["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert code(s3.put_object, Bucket="enforced-b", Key="k", Body=b"",
                ACL="public-read") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.put_object, Bucket="enforced-b", Key="k", Body=b"",
                ACL="bucket-owner-full-control") == "ok"  # fmt: skip
    assert code(s3.put_object, Bucket="enforced-b", Key="k2", Body=b"",
                ACL="private") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.put_bucket_acl, Bucket="enforced-b",
                ACL="public-read") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.put_bucket_acl, Bucket="enforced-b",
                ACL="private") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.put_object_acl, Bucket="enforced-b", Key="k",
                ACL="public-read") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.create_multipart_upload, Bucket="enforced-b", Key="m",
                ACL="public-read") == "AccessControlListNotSupported"  # fmt: skip
    assert code(s3.create_bucket, Bucket="enforced-c",
                ACL="public-read") == "InvalidBucketAclWithObjectOwnership"  # fmt: skip
    acl = s3.get_object_acl(Bucket="enforced-b", Key="k")
    assert acl["Owner"]["ID"] == alice_id
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [
        (alice_id, "FULL_CONTROL")
    ]
    s3.put_bucket_ownership_controls(
        Bucket="enforced-b", OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    soon(lambda: code(s3.put_bucket_acl, Bucket="enforced-b", ACL="public-read") == "ok")
    s3.delete_bucket_ownership_controls(Bucket="enforced-b")
    soon(lambda: code(s3.get_bucket_ownership_controls, Bucket="enforced-b")
         == "OwnershipControlsNotFoundError")  # fmt: skip


def test_public_access_block_flags(shared_server: Server, alice: Any) -> None:
    s3 = alice[0]
    _bucket(s3, "pab-b")
    s3.put_object(Bucket="pab-b", Key="k", Body=b"v", ACL="public-read")
    url = f"{shared_server.endpoint}/pab-b/k"
    assert requests.get(url, timeout=10).status_code == 200
    assert (
        code(s3.get_public_access_block, Bucket="pab-b") == "NoSuchPublicAccessBlockConfiguration"
    )

    def block(**flags: bool) -> None:
        s3.put_public_access_block(Bucket="pab-b", PublicAccessBlockConfiguration=flags)

    block(BlockPublicAcls=True)
    soon(lambda: code(s3.put_bucket_acl, Bucket="pab-b", ACL="public-read") == "AccessDenied")
    got = s3.get_public_access_block(Bucket="pab-b")["PublicAccessBlockConfiguration"]
    assert got == {"BlockPublicAcls": True, "IgnorePublicAcls": False,
                   "BlockPublicPolicy": False, "RestrictPublicBuckets": False}  # fmt: skip
    assert code(s3.put_object, Bucket="pab-b", Key="p", Body=b"", ACL="public-read") == (
        "AccessDenied"
    )
    assert code(s3.put_bucket_acl, Bucket="pab-b", ACL="public-read") == "AccessDenied"
    assert requests.get(url, timeout=10).status_code == 200  # existing grants still count
    block(IgnorePublicAcls=True)
    soon(lambda: requests.get(url, timeout=10).status_code == 403)
    block(BlockPublicPolicy=True)
    soon(lambda: code(s3.put_bucket_policy, Bucket="pab-b", Policy=public_read("pab-b"))
         == "AccessDenied")  # fmt: skip
    block()
    s3.put_bucket_policy(Bucket="pab-b", Policy=public_read("pab-b"))
    soon(lambda: requests.get(url, timeout=10).status_code == 200)
    block(RestrictPublicBuckets=True, IgnorePublicAcls=True)
    soon(lambda: requests.get(url, timeout=10).status_code == 403)
    s3.delete_public_access_block(Bucket="pab-b")
    soon(lambda: requests.get(url, timeout=10).status_code == 200)


def test_existing_object_tags_are_condition_keys(alice: Any, bob: Any) -> None:
    """s3:ExistingObjectTag/<key> is the tag of the object the request names (read only when
    a policy's condition asks for it)."""
    s3 = alice[0]
    s3.create_bucket(Bucket="tagged-b")
    s3.put_object(Bucket="tagged-b", Key="blue", Body=b"b", Tagging="team=blue")
    s3.put_object(Bucket="tagged-b", Key="red", Body=b"r", Tagging="team=red")
    s3.put_bucket_policy(Bucket="tagged-b", Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::tagged-b/*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "blue"}}}]}))  # fmt: skip
    other = bob[0]
    soon(lambda: code(other.get_object, Bucket="tagged-b", Key="blue") == "ok")
    assert code(other.get_object, Bucket="tagged-b", Key="red") == "AccessDenied"
    assert code(other.get_object, Bucket="tagged-b", Key="missing") == "AccessDenied"


def test_public_read_write_takes_unsigned_forms_and_lists_stay_own(
    shared_server: Server, alice: Any, bob: Any
) -> None:
    """An unsigned POST upload is the anonymous caller: accepted where the bucket ACL lets
    everyone write (the bucket owner then owns the object); another user's ListBuckets does
    not show the public bucket; re-creating it with another ACL is refused, not ignored."""
    s3, alice_id = alice
    _bucket(s3, "open-b", ACL="public-read-write")
    fields = {"key": "form.txt", "acl": "public-read"}
    answer = requests.post(f"{shared_server.endpoint}/open-b", data=fields,
                           files={"file": ("form.txt", b"hello")}, timeout=10)  # fmt: skip
    assert answer.status_code == 204, answer.content
    assert s3.get_object(Bucket="open-b", Key="form.txt")["Body"].read() == b"hello"
    assert s3.get_object_acl(Bucket="open-b", Key="form.txt")["Owner"]["ID"] == alice_id
    assert "open-b" not in [b["Name"] for b in bob[0].list_buckets()["Buckets"]]
    again = {"Bucket": "open-b", "ObjectOwnership": "ObjectWriter"}
    assert code(s3.create_bucket, ACL="public-read-write", **again) == "ok"
    assert code(s3.create_bucket, **again) == "BucketAlreadyExists"


def test_policy_status_is_the_bucket_policys_alone(alice: Any) -> None:
    """GetBucketPolicyStatus speaks of the bucket policy, as AWS's: a bucket without one is
    404 NoSuchBucketPolicy, whatever its ACL (RGW answers false and counts public ACLs)."""
    s3 = alice[0]
    _bucket(s3, "status-b")
    s3.put_bucket_acl(Bucket="status-b", ACL="authenticated-read")
    assert code(s3.get_bucket_policy_status, Bucket="status-b") == "NoSuchBucketPolicy"
    s3.put_bucket_policy(Bucket="status-b", Policy=public_read("status-b"))
    soon(lambda: s3.get_bucket_policy_status(Bucket="status-b")["PolicyStatus"]["IsPublic"])
