"""Form fields that a PUT would carry as headers mean what the headers mean (decision 0037):
the `tagging` field fills s3:RequestObjectTag/<key> and s3:RequestObjectTagKeys for the
bucket policy, as a PUT's x-amz-tagging header does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from tests.conftest import Server
from tests.e2e.test_post_object import code_of


@pytest.fixture
def poster(shared_server: Server) -> Any:
    return shared_server.client(signature_version="s3v4")


def tagging(**tags: str) -> str:
    pairs = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in tags.items())
    return f"<Tagging><TagSet>{pairs}</TagSet></Tagging>"


def post(poster: Any, bucket: str, key: str, data: bytes, **fields: str) -> requests.Response:
    """A SigV4 form by boto3 whose policy covers exactly `fields`, posted by `requests`."""
    form = poster.generate_presigned_post(
        bucket, key, Fields=fields, Conditions=[{k: v} for k, v in fields.items()],
        ExpiresIn=300,
    )  # fmt: skip
    return requests.post(form["url"], data=form["fields"], files={"file": data}, timeout=30)


def error(response: requests.Response) -> tuple[int, str]:
    code = response.content.split(b"<Code>")[1].split(b"</Code>")[0].decode()
    return response.status_code, code


def test_a_policy_on_request_tags_decides_form_uploads(s3: Any, poster: Any, bucket: str) -> None:
    """Uploads must be tagged class=public and carry no other tag key."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringNotEquals": {"s3:RequestObjectTag/class": "public"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["class"]}}},
    ]}))  # fmt: skip
    assert error(post(poster, bucket, "untagged", b"u")) == (403, "AccessDenied")
    refused = post(poster, bucket, "secret", b"s", tagging=tagging(**{"class": "secret"}))
    assert error(refused) == (403, "AccessDenied")
    extra = post(poster, bucket, "extra", b"e", tagging=tagging(**{"class": "public", "o": "x"}))
    assert error(extra) == (403, "AccessDenied")
    assert code_of(s3, bucket, "untagged") == code_of(s3, bucket, "secret") == "404"
    assert code_of(s3, bucket, "extra") == "404"
    accepted = post(poster, bucket, "public", b"p", tagging=tagging(**{"class": "public"}))
    assert accepted.status_code == 204, accepted.content
    assert s3.get_object_tagging(Bucket=bucket, Key="public")["TagSet"] == [
        {"Key": "class", "Value": "public"}
    ]
    # a PUT's x-amz-tagging is decided alike
    s3.put_object(Bucket=bucket, Key="put", Body=b"p", Tagging="class=public")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="put2", Body=b"p", Tagging="class=public&o=x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
