"""Virtual-hosted-style requests from unmodified boto3 and urllib against a real server.

The server is configured with `domains = ["s3.localtest"]`. Names under `.localtest` do not
resolve here, so the test resolves them the way an /etc/hosts entry would: `socket.getaddrinfo`
answers 127.0.0.1 for them and asks the real resolver for anything else. Everything else is
real: botocore builds `http://<bucket>.s3.localtest:<port>/<key>` URLs and signs them with
that Host, the bytes go over TCP, and the server reads the bucket from the Host header.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory

DOMAIN = "s3.localtest"


@pytest.fixture
def local_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and (name == DOMAIN or name.endswith("." + DOMAIN)):
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def server(make_server: ServerFactory, local_dns: None) -> Server:
    return make_server(f'domains = ["{DOMAIN}"]')


def _client(server: Server, style: str, hosts: list[str] | None = None) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{server.port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": style}, signature_version="s3v4"),
    )
    if hosts is not None:

        def record(request: Any, **_: Any) -> None:
            hosts.append(request.url)

        client.meta.events.register("before-send.s3", record)
    return client


@pytest.fixture
def sent() -> list[str]:
    """The URLs a client sent requests to."""
    return []


def test_boto3_virtual_host_round_trip(server: Server, sent: list[str]) -> None:
    s3 = _client(server, "virtual", sent)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="dir/a b+é.txt", Body=b"hello")
    s3.put_object(Bucket="photos", Key="other", Body=b"x")
    assert s3.get_object(Bucket="photos", Key="dir/a b+é.txt")["Body"].read() == b"hello"
    assert s3.head_object(Bucket="photos", Key="other")["ContentLength"] == 1
    listed = s3.list_objects_v2(Bucket="photos", Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b+é.txt"]
    deleted = s3.delete_objects(Bucket="photos", Delete={"Objects": [{"Key": "other"}]})
    assert deleted["Deleted"] == [{"Key": "other"}]
    s3.delete_object(Bucket="photos", Key="dir/a b+é.txt")
    assert s3.list_objects(Bucket="photos").get("Contents") is None
    s3.delete_bucket(Bucket="photos")
    # Every request went to the bucket's host name, none named the bucket in the path.
    assert sent and all(url.startswith(f"http://photos.{DOMAIN}:{server.port}/") for url in sent)
    assert not any(url.split(str(server.port), 1)[1].startswith("/photos") for url in sent)


def test_both_styles_see_the_same_buckets(server: Server, sent: list[str]) -> None:
    virtual = _client(server, "virtual")
    path = _client(server, "path", sent)  # Host is the domain itself: path style
    plain = server.client()  # Host 127.0.0.1: path style
    path.create_bucket(Bucket="shared")
    virtual.put_object(Bucket="shared", Key="k", Body=b"from virtual")
    assert path.get_object(Bucket="shared", Key="k")["Body"].read() == b"from virtual"
    assert plain.get_object(Bucket="shared", Key="k")["Body"].read() == b"from virtual"
    assert [b["Name"] for b in virtual.list_buckets()["Buckets"]] == ["shared"]
    assert all(url.startswith(f"http://{DOMAIN}:{server.port}/") for url in sent)


def test_dotted_bucket_name(server: Server, sent: list[str]) -> None:
    s3 = _client(server, "virtual", sent)
    s3.create_bucket(Bucket="my.dotted.bucket")
    s3.put_object(Bucket="my.dotted.bucket", Key="k", Body=b"dots")
    assert server.client().get_object(Bucket="my.dotted.bucket", Key="k")["Body"].read() == b"dots"
    assert sent[-1].startswith(f"http://my.dotted.bucket.{DOMAIN}:{server.port}/k")


def test_missing_bucket_by_host(server: Server) -> None:
    s3 = _client(server, "virtual")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="nowhere", Key="k", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_presigned_virtual_host_url_with_urllib(server: Server) -> None:
    s3 = _client(server, "virtual")
    s3.create_bucket(Bucket="pre")
    s3.put_object(Bucket="pre", Key="a/b c", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "pre", "Key": "a/b c"})
    assert url.startswith(f"http://pre.{DOMAIN}:{server.port}/a/b%20c?")
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"presigned"


def test_signature_covers_the_host(server: Server) -> None:
    """A request signed for one bucket's host and sent to another's is refused."""
    s3 = _client(server, "virtual")
    s3.create_bucket(Bucket="one")
    s3.create_bucket(Bucket="two")
    s3.put_object(Bucket="one", Key="k", Body=b"1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "one", "Key": "k"})
    moved = url.replace(f"//one.{DOMAIN}", f"//two.{DOMAIN}")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(moved, timeout=30)
    assert exc.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in exc.value.read()


def test_browser_post_to_the_bucket_host(server: Server) -> None:
    s3 = _client(server, "virtual")
    s3.create_bucket(Bucket="forms")
    post = s3.generate_presigned_post(
        "forms", "in/${filename}", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}], ExpiresIn=300,
    )  # fmt: skip
    assert post["url"] == f"http://forms.{DOMAIN}:{server.port}/"
    response = requests.post(
        post["url"], data=post["fields"], files={"file": ("a.txt", b"posted")}, timeout=30
    )
    assert response.status_code == 201, response.content
    assert f"<Location>http://forms.{DOMAIN}:{server.port}/in/a.txt</Location>" in response.text
    assert s3.get_object(Bucket="forms", Key="in/a.txt")["Body"].read() == b"posted"
