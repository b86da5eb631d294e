"""The AWS CLI v1 (the `aws` command from PyPI) against a real Égide server.

awscli v1 pins its own, older botocore, so it lives in a virtualenv of its own, made once and
reused: ~/.cache/egide-tests/awscli-venv.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_identities import egide

# Generous: whichever test comes first builds the awscli virtualenv (about 20 s with a
# reachable index); every `aws` call has its own 120 s limit.
pytestmark = pytest.mark.timeout(900)

ACCESS_KEY = "EGTESTACCESSKEY0001"  # as in tests/conftest.py
SECRET_KEY = "egide-test-secret-key-0001"

VENV = Path.home() / ".cache" / "egide-tests" / "awscli-venv"
_OFFLINE_HINTS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
    "Max retries exceeded",
)


def _aws_works(aws: Path) -> bool:
    try:
        done = subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "aws-cli/1." in done.stdout + done.stderr


@pytest.fixture(scope="session")
def aws_cli() -> Path:
    """The `aws` binary of a dedicated virtualenv, created (or reused if it works) under a lock
    so that concurrent test sessions do not build it twice."""
    aws = VENV / "bin" / "aws"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "awscli-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _aws_works(aws):
            return aws
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        done = subprocess.run(
            [*pip, "install", "--quiet", "awscli"], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            output = done.stdout + done.stderr
            if any(hint in output for hint in _OFFLINE_HINTS):
                pytest.skip(f"pip cannot install awscli (package index unreachable?):\n{output}")
            pytest.fail(f"pip install awscli failed:\n{output}")
        if not _aws_works(aws):
            pytest.fail(f"{aws} --version does not work after installing awscli")
        return aws


class Aws:
    """Runs `aws … --endpoint-url <server>` with the test credentials and a private config."""

    def __init__(self, binary: Path, endpoint: str, home: Path) -> None:
        self.binary = binary
        self.endpoint = endpoint
        config = home / "aws-config"
        # The CLI's own multipart settings (8 MiB threshold and parts), said out loud: the
        # 12 MiB and 20 MiB files below go up as multipart uploads.
        config.write_text(
            "[default]\n"
            "region = us-east-1\n"
            "s3 =\n"
            "    multipart_threshold = 8MB\n"
            "    multipart_chunksize = 8MB\n"
        )
        scrubbed = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env = {
            **scrubbed,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args, "--endpoint-url", self.endpoint],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"aws {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--output", "json").stdout)


@pytest.fixture
def aws(aws_cli: Path, shared_server: Any, tmp_path: Path) -> Iterator[Aws]:
    yield Aws(aws_cli, shared_server.endpoint, tmp_path)


def test_cli_version(aws: Aws) -> None:
    done = aws.run("--version")
    assert "aws-cli/1." in done.stdout + done.stderr


def test_bucket_and_object_lifecycle(aws: Aws, shared_server: Any, tmp_path: Path) -> None:
    bucket = f"cli-{os.urandom(4).hex()}"
    data = os.urandom(12 * 1024 * 1024)
    source = tmp_path / "up.bin"
    source.write_bytes(data)

    done = aws.run("s3", "mb", f"s3://{bucket}")
    assert f"make_bucket: {bucket}" in done.stdout

    aws.run("s3", "cp", str(source), f"s3://{bucket}/dir/big file.bin")
    fetched = tmp_path / "down.bin"
    aws.run("s3", "cp", f"s3://{bucket}/dir/big file.bin", str(fetched))
    assert fetched.read_bytes() == data

    # The object really is there, as boto3 sees it too, in two parts (8 + 4 MiB).
    head = shared_server.client().head_object(Bucket=bucket, Key="dir/big file.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-2"')

    listing = aws.run("s3", "ls", f"s3://{bucket}/", "--recursive").stdout
    assert "dir/big file.bin" in listing
    assert str(len(data)) in listing
    assert "PRE dir/" in aws.run("s3", "ls", f"s3://{bucket}/").stdout

    meta = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "dir/big file.bin")
    assert meta["ContentLength"] == len(data)
    assert meta["ETag"] == head["ETag"]

    missing = aws.run(
        "s3api", "get-object", "--bucket", bucket, "--key", "nope", str(tmp_path / "x"),
        check=False,
    )  # fmt: skip
    assert missing.returncode != 0
    assert "NoSuchKey" in missing.stderr

    # rb of a non-empty bucket fails with BucketNotEmpty; rm then rb succeeds.
    refused = aws.run("s3", "rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0
    assert "BucketNotEmpty" in refused.stderr

    done = aws.run("s3", "rm", f"s3://{bucket}/dir/big file.bin")
    assert f"delete: s3://{bucket}/dir/big file.bin" in done.stdout
    assert aws.run("s3", "ls", f"s3://{bucket}/", "--recursive").stdout.strip() == ""

    done = aws.run("s3", "rb", f"s3://{bucket}")
    assert f"remove_bucket: {bucket}" in done.stdout
    gone = aws.run("s3api", "head-bucket", "--bucket", bucket, check=False)
    assert gone.returncode != 0
    assert "404" in gone.stderr or "Not Found" in gone.stderr


def write_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "nested/deep/b.bin": os.urandom(300_000),
        "nested/big.bin": os.urandom(20 * 1024 * 1024 + 3),
        "empty": b"",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_sync_a_tree_up_and_down(aws: Aws, shared_server: Any, tmp_path: Path) -> None:
    bucket = f"sync-{os.urandom(4).hex()}"
    aws.run("s3", "mb", f"s3://{bucket}")
    up = tmp_path / "up"
    files = write_tree(up)
    done = aws.run("s3", "sync", str(up), f"s3://{bucket}/tree")
    assert done.stdout.count("upload:") == len(files)
    assert "upload:" not in aws.run("s3", "sync", str(up), f"s3://{bucket}/tree").stdout
    head = shared_server.client().head_object(Bucket=bucket, Key="tree/nested/big.bin")
    assert head["ETag"].endswith('-3"')  # 8 + 8 + 4 MiB
    down = tmp_path / "down"
    aws.run("s3", "sync", f"s3://{bucket}/tree", str(down))
    for name, data in files.items():
        assert (down / name).read_bytes() == data, name


def test_s3api_multipart_commands(aws: Aws, tmp_path: Path) -> None:
    bucket = f"mpu-{os.urandom(4).hex()}"
    aws.run("s3", "mb", f"s3://{bucket}")
    parts = [os.urandom(5 * 1024 * 1024), b"tail"]
    upload_id = aws.json("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "k")[
        "UploadId"
    ]
    listed = aws.json("s3api", "list-multipart-uploads", "--bucket", bucket)
    assert [u["UploadId"] for u in listed["Uploads"]] == [upload_id]
    done = []
    for number, data in enumerate(parts, start=1):
        body = tmp_path / f"part{number}"
        body.write_bytes(data)
        etag = aws.json(
            "s3api", "upload-part", "--bucket", bucket, "--key", "k", "--upload-id", upload_id,
            "--part-number", str(number), "--body", str(body),
        )["ETag"]  # fmt: skip
        done.append({"PartNumber": number, "ETag": etag})
    listed_parts = aws.json(
        "s3api", "list-parts", "--bucket", bucket, "--key", "k", "--upload-id", upload_id
    )
    assert [p["Size"] for p in listed_parts["Parts"]] == [len(p) for p in parts]
    aws.run(
        "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "k",
        "--upload-id", upload_id, "--multipart-upload", json.dumps({"Parts": done}),
    )  # fmt: skip
    out = tmp_path / "out"
    aws.run("s3api", "get-object", "--bucket", bucket, "--key", "k", str(out))
    assert out.read_bytes() == b"".join(parts)


def test_s3api_versioning_and_object_lock(aws: Aws, tmp_path: Path) -> None:
    bucket = f"ver-{os.urandom(4).hex()}"
    aws.run("s3api", "create-bucket", "--bucket", bucket, "--object-lock-enabled-for-bucket")
    status = aws.json("s3api", "get-bucket-versioning", "--bucket", bucket)
    assert status["Status"] == "Enabled"
    ids = []
    for content in (b"one", b"two"):
        body = tmp_path / "body"
        body.write_bytes(content)
        ids.append(
            aws.json("s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(body))[
                "VersionId"
            ]
        )
    listed = aws.json("s3api", "list-object-versions", "--bucket", bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == ids[::-1]
    out = tmp_path / "out"
    aws.run(
        "s3api", "get-object", "--bucket", bucket, "--key", "k", "--version-id", ids[0], str(out)
    )
    assert out.read_bytes() == b"one"
    aws.run(
        "s3api", "put-object-legal-hold", "--bucket", bucket, "--key", "k",
        "--version-id", ids[0], "--legal-hold", "Status=ON",
    )  # fmt: skip
    refused = aws.run(
        "s3api", "delete-object", "--bucket", bucket, "--key", "k", "--version-id", ids[0],
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    aws.run(
        "s3api", "put-object-legal-hold", "--bucket", bucket, "--key", "k",
        "--version-id", ids[0], "--legal-hold", "Status=OFF",
    )  # fmt: skip
    aws.run("s3api", "delete-object", "--bucket", bucket, "--key", "k", "--version-id", ids[0])
    listed = aws.json("s3api", "list-object-versions", "--bucket", bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == [ids[1]]


def test_s3api_bucket_configurations(aws: Aws, tmp_path: Path) -> None:
    """Lifecycle, CORS and tags set and read back through the cli's own request builders."""
    bucket = f"cfg-{os.urandom(4).hex()}"
    aws.run("s3", "mb", f"s3://{bucket}")
    lifecycle = {
        "Rules": [
            {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
             "Expiration": {"Days": 30}},
        ]
    }  # fmt: skip
    aws.run(
        "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", json.dumps(lifecycle),
    )  # fmt: skip
    stored = aws.json("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)
    assert stored["Rules"] == lifecycle["Rules"]
    cors = {"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://app.example"]}]}
    aws.run(
        "s3api", "put-bucket-cors", "--bucket", bucket, "--cors-configuration", json.dumps(cors)
    )
    assert (
        aws.json("s3api", "get-bucket-cors", "--bucket", bucket)["CORSRules"] == cors["CORSRules"]
    )
    body = tmp_path / "body"
    body.write_bytes(b"tagged")
    aws.run(
        "s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(body),
        "--tagging", "team=data",
    )  # fmt: skip
    tags = aws.json("s3api", "get-object-tagging", "--bucket", bucket, "--key", "k")["TagSet"]
    assert tags == [{"Key": "team", "Value": "data"}]


def test_sts_get_caller_identity_and_assume_role(
    aws: Aws, shared_server: Any, tmp_path: Path
) -> None:
    me = aws.json("sts", "get-caller-identity")
    account = me["Account"]
    assert me["Arn"] == f"arn:aws:iam::{account}:user/admin"
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                     "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}}))  # fmt: skip
    role = f"cli-{os.urandom(3).hex()}"
    egide(shared_server, "role", "create", role, str(trust))
    answer = aws.json("sts", "assume-role", "--role-arn", f"arn:aws:iam::{account}:role/{role}",
                      "--role-session-name", "from-the-cli")  # fmt: skip
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert answer["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/{role}/from-the-cli")
    aws.env.update(
        AWS_ACCESS_KEY_ID=answer["Credentials"]["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=answer["Credentials"]["SecretAccessKey"],
        AWS_SESSION_TOKEN=answer["Credentials"]["SessionToken"],
    )
    session = aws.json("sts", "get-caller-identity")
    assert session["Arn"] == answer["AssumedRoleUser"]["Arn"]
