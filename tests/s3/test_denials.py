"""A refused request answered 404 where S3 answers it (egide.s3.denials), through boto3 against
a real server: a bucket that does not exist is NoSuchBucket to anyone; a missing key is
NoSuchKey to a caller who may list it (with the key as prefix), AccessDenied to others."""

from __future__ import annotations

from pathlib import Path

import requests
from tests.conftest import Server
from tests.e2e.test_policies import code, new_user, policy, server

__all__ = ["server"]  # the fixture, shared with test_policies


def test_a_bucket_that_does_not_exist_is_no_such_bucket_to_anyone(
    server: Server, tmp_path: Path
) -> None:
    s3, _ = new_user(server, "nothing-granted", tmp_path)
    assert code(s3.list_objects_v2, Bucket="never-made") == "NoSuchBucket"
    assert code(s3.put_object, Bucket="never-made", Key="k", Body=b"x") == "NoSuchBucket"
    assert code(s3.delete_bucket, Bucket="never-made") == "NoSuchBucket"
    assert code(s3.create_bucket, Bucket="never-made") == "AccessDenied"  # not NoSuchBucket
    assert code(s3.list_objects_v2, Bucket="team") == "AccessDenied"  # it exists
    assert requests.get(f"{server.endpoint}/never-made/k", timeout=30).status_code == 404


def test_a_missing_key_is_no_such_key_only_to_who_may_list_it(
    server: Server, tmp_path: Path
) -> None:
    listing = policy(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team",
         "Condition": {"StringLike": {"s3:prefix": "public/*"}}},
    )  # fmt: skip
    lister, _ = new_user(server, "prefix-lister", tmp_path, listing=listing)
    stranger, _ = new_user(server, "stranger", tmp_path)
    assert code(lister.get_object, Bucket="team", Key="public/absent") == "NoSuchKey"
    assert code(lister.get_object, Bucket="team", Key="private/absent") == "AccessDenied"
    assert code(lister.get_object, Bucket="team", Key="report.txt") == "AccessDenied"  # exists
    assert code(stranger.get_object, Bucket="team", Key="public/absent") == "AccessDenied"
