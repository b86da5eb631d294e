"""Run the ceph/s3-tests conformance suite against an Égide endpoint and summarise the results.

    python tools/s3tests.py --suite /work/s3-tests --start
    python tools/s3tests.py --suite /work/s3-tests --endpoint http://127.0.0.1:9000 \
        --main-key A --main-secret S --alt-key B --alt-secret T --tenant-key C --tenant-secret U

The suite is never copied into this project: point --suite at a checkout of
https://github.com/ceph/s3-tests. Its own requirements (it pins its boto3) are installed in a
separate virtualenv cached under ~/.cache/egide-s3tests-venv. The script writes the suite's
configuration file in a temporary directory, runs `pytest <suite>/<tests dir>` with a junit
report, and prints passed / failed / errored / skipped per feature family (derived from the test
names). It exits 0 when the run completed, whatever the results: see docs/compatibility.md.

Only the standard library is used here, so any Python >= 3.11 can run it.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = Path.home() / ".cache" / "egide-s3tests-venv"
EXTRA_REQUIREMENTS = ("pytest-timeout", "pytest-xdist")

# Markers deselected by default: each selects tests of something that is not S3 as AWS serves
# it, or that only a Ceph RGW deployment configured for it can run. docs/compatibility.md gives
# the evidence for each.
DEFAULT_EXCLUDED_MARKERS: tuple[str, ...] = (
    "fails_on_aws",  # RGW behaviour or extensions that AWS S3 itself does not have
    "bucket_logging",  # RGW's logging tests need its roll-time setting and service-model extras
    "bucket_logging_cleanup",
    "fails_without_logging_rollover",
    "lifecycle_expiration",  # need RGW's lc_debug_interval (a "day" lasts 10 s)
    "lifecycle_transition",  # same, plus RGW storage classes
    "cloud_transition",  # RGW cloud tiering to a second endpoint ([s3 cloud])
    "cloud_restore",
    "target_by_bucket",
    "iam_account",  # need an IAM service with account root users
    "iam_user",
    "iam_role",
    "iam_cross_account",
    "iam_tenant",
    "user_policy",
    "role_policy",
    "group",
    "group_policy",
    "session_policy",
    "abac_test",
    "test_of_sts",  # STS
    "webidentity_test",
    "token_claims_trust_policy_test",
    "token_principal_tag_role_policy_test",
    "token_request_tag_trust_policy_test",
    "token_resource_tags_test",
    "token_role_tags_test",
    "token_tag_keys_test",
    "sns",  # bucket notifications to RGW's SNS-like topics
    "s3select",  # SelectObjectContent against RGW's own SQL engine
)

# Test modules in the functional directory that are not S3 (IAM, STS, SNS) or only RGW's
# S3 Select engine; ignored by default.
DEFAULT_IGNORED_MODULES: tuple[str, ...] = (
    "test_iam.py",
    "test_sts.py",
    "test_sns.py",
    "test_s3select.py",
)

# The "AWS profile" the conformance figure is measured on (/work/shared/
# s3-tests-profile.md, docs/compatibility.md): two files, one marker expression, two tests of
# RGW's tenant syntax deselected. `--profile aws` applies exactly that selection.
AWS_PROFILE_FILES: tuple[str, ...] = ("test_s3.py", "test_headers.py")
AWS_PROFILE_MARKERS = " and ".join(
    f"not {m}"
    for m in (
        "lifecycle_expiration", "lifecycle_transition", "cloud_transition", "cloud_restore",
        "bucket_logging", "bucket_logging_cleanup", "fails_without_logging_rollover",
        "test_of_sts", "webidentity_test", "token_claims_trust_policy_test",
        "token_principal_tag_role_policy_test", "token_request_tag_trust_policy_test",
        "token_resource_tags_test", "token_role_tags_test", "token_tag_keys_test",
        "iam_account", "iam_cross_account", "iam_role", "iam_tenant", "iam_user",
        "user_policy", "role_policy", "session_policy", "group", "group_policy",
        "abac_test", "s3select", "sns", "s3website", "s3website_routing_rules",
        "s3website_redirect_location", "appendobject", "fails_with_subdomain",
        "fails_on_rgw", "fails_on_aws",
    )
)  # fmt: skip
AWS_PROFILE_DESELECTED: tuple[str, ...] = (
    "test_s3.py::test_bucket_policy_different_tenant",
    "test_s3.py::test_bucket_policy_tenanted_bucket",
)

# Feature families, first match wins; a test name is matched without its "test_" prefix and
# without pytest parameters.
FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("bucket_logging", r"bucket_logging|put_bucket_logging|rm_bucket_logging"),
    ("lifecycle", r"lifecycle|restore_object|restore_noncur|read_through"),
    ("object_lock", r"object_lock"),
    ("website", r"website"),
    ("post_object", r"post_object"),
    ("cors", r"cors"),
    (
        "policy",
        r"bucket_policy|bucketv2_policy|policy_status|public_block|block_public|"
        r"ignore_public_acls|_with_policy|bucket_policy$",
    ),
    ("encryption", r"encrypt|sse_c|sse_kms|sse_s3|enc_conflict|copy_part_enc|copy_enc"),
    ("tagging", r"tagging|_tags$|_tags_|^put_max_tags|^put_excess"),
    ("versioning", r"versioning|versioned|delete_marker"),
    ("object_attributes", r"object_attributes"),
    ("checksums", r"checksum|cksum"),
    ("multipart", r"multipart|upload_part|100_continue"),
    (
        "conditional_write",
        r"^put_object_if|^put_current_object_if|^put_object_current_if|^delete_object_if|"
        r"^delete_object_current_if|^delete_object_version_if|^delete_objects_.*if_match|"
        r"conditional_write",
    ),
    ("conditional", r"^get_object_if|^copy_object_if"),
    ("copy", r"copy"),
    ("delete_objects", r"multi_object|multi_objectv2"),
    ("auth_sigv2", r"_aws2$|_v2$"),
    (
        "acl",
        r"acl|grant|access_bucket|anon|ownership|_public$|_public_|account_usage|"
        r"head_bucket_usage",
    ),
    (
        "presigned",
        r"presigned|x_amz_expires|raw_authenticated|raw_put_authenticated|raw_get|"
        r"raw_response_headers",
    ),
    (
        "auth",
        r"authorization|bad_auth|invalid_auth|bad_date|bad_ua|amz_date|requestid|"
        r"expected_bucket_owner",
    ),
    ("ranges", r"range"),
    ("list_objects_v2", r"listv2|key_count"),
    ("list_objects", r"bucket_list|list_return|list_special|list_long_name|list_unordered"),
    (
        "bucket",
        r"^bucket|^buckets_|^list_buckets|^create_bucket|^head_bucket|^bucketv2",
    ),
    ("object_head", r"head"),
    ("object_delete", r"object_delete|delete_key"),
    (
        "object_get",
        r"object_read|get_object|object_raw|atomic_read|get_part|torrent|unreadable",
    ),
    (
        "object_put",
        r"object_write|object_create|object_put|metadata|atomic|content_encoding|chunked",
    ),
)

_COMPILED_RULES = tuple((family, re.compile(rx)) for family, rx in FAMILY_RULES)
OUTCOMES = ("passed", "failed", "errored", "skipped")


def family_of(test_name: str) -> str:
    """Map a test name (`test_bucket_list_empty`, `test_x[param]`) to its feature family."""
    name = test_name.split("[", 1)[0]
    name = name.removeprefix("test_")
    for family, rx in _COMPILED_RULES:
        if rx.search(name):
            return family
    return "other"


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class User:
    access_key: str
    secret_key: str
    user_id: str
    display_name: str
    email: str


@dataclass(frozen=True)
class Users:
    main: User
    alt: User
    tenant: User
    tenant_name: str = "testx"


def default_users() -> Users:
    # For --endpoint runs against a server of one's own (give its users' keys and canonical
    # IDs); --start replaces them with three ordinary users it creates (`ordinary_users`).
    return Users(
        main=User(
            "EGS3TESTSMAIN0000001", "egide-s3tests-main-secret-0001", "egide", "egide",
            "main@egide.invalid",
        ),
        alt=User(
            "EGS3TESTSALT00000001", "egide-s3tests-alt-secret-00001", "egide-alt", "egide-alt",
            "alt@egide.invalid",
        ),
        tenant=User(
            "EGS3TESTSTENANT00001", "egide-s3tests-tenant-secret-01", "testx$egide-tenant",
            "testx$egide-tenant", "tenant@egide.invalid",
        ),
    )  # fmt: skip


def split_endpoint(endpoint: str) -> tuple[str, int, bool]:
    url = urllib.parse.urlsplit(endpoint)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise ValueError(f"endpoint must be http(s)://host:port, not {endpoint!r}")
    secure = url.scheme == "https"
    return url.hostname, url.port or (443 if secure else 80), secure


def write_conf(path: Path, endpoint: str, users: Users, bucket_prefix: str) -> Path:
    """Write the s3tests.conf the suite reads (S3TEST_CONF): DEFAULT, fixtures, the three S3
    users, and the IAM sections that its configure() requires even when no IAM test runs."""
    host, port, secure = split_endpoint(endpoint)
    cfg = configparser.RawConfigParser()
    cfg.optionxform = str  # type: ignore[assignment,method-assign]
    cfg["DEFAULT"] = {
        "host": host,
        "port": str(port),
        "is_secure": str(secure),
        "ssl_verify": "False",
    }
    cfg["fixtures"] = {
        "bucket prefix": bucket_prefix,
        "iam name prefix": "s3-tests-",
        "iam path prefix": "/s3-tests/",
    }
    for section, user in (("s3 main", users.main), ("s3 alt", users.alt)):
        cfg[section] = {
            "display_name": user.display_name,
            "user_id": user.user_id,
            "email": user.email,
            "access_key": user.access_key,
            "secret_key": user.secret_key,
        }
    cfg["s3 main"]["api_name"] = ""
    # SSE-KMS key ids name the key of the bucket written to (decision 0033); the suite's
    # defaults (testkey-1, testkey-2) name keys Égide does not have, and are refused.
    cfg["s3 main"]["kms_keyid"] = "alias/egide/bucket"
    cfg["s3 main"]["kms_keyid2"] = "arn:egide:kms:::alias/egide/bucket"
    cfg["s3 tenant"] = {
        "display_name": users.tenant.display_name,
        "user_id": users.tenant.user_id,
        "email": users.tenant.email,
        "access_key": users.tenant.access_key,
        "secret_key": users.tenant.secret_key,
        "tenant": users.tenant_name,
    }
    # Placeholders: Égide has no IAM; the IAM/STS tests are deselected.
    cfg["iam"] = {
        "email": "iam@egide.invalid",
        "user_id": "egide-iam",
        "access_key": "EGS3TESTSIAMNOTUSED01",
        "secret_key": "egide-s3tests-iam-not-used-000",
        "display_name": "egide-iam",
    }
    for section, tag in (("iam root", "ROOT"), ("iam alt root", "ALTROOT")):
        cfg[section] = {
            "access_key": f"EGS3TESTS{tag}NOTUSED",
            "secret_key": f"egide-s3tests-{tag.lower()}-not-used",
            "user_id": f"EGIDE{tag}",
            "email": f"{tag.lower()}@egide.invalid",
        }
    with path.open("w") as out:
        cfg.write(out)
    return path


def server_toml(data_dir: Path, port: int, users: Users) -> str:
    lines = [
        f'data_dir = "{data_dir}"',
        f'listen = "127.0.0.1:{port}"',
        "trash_grace_seconds = 0",
        # ceph/s3-tests assumes RGW's default Object Ownership (ACLs enabled).
        'default_object_ownership = "ObjectWriter"',
    ]
    for user in (users.main, users.alt, users.tenant):
        lines += [
            "",
            "[[credentials]]",
            f'access_key = "{user.access_key}"',
            f'secret_key = "{user.secret_key}"',
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# suite, virtualenv, server


def tests_dir(suite: Path) -> Path:
    """The boto3 functional tests: `s3tests_boto3/functional` in older checkouts,
    `s3tests/functional` since the boto2 tests were dropped."""
    for rel in ("s3tests_boto3/functional", "s3tests/functional"):
        if (suite / rel / "__init__.py").exists():
            return suite / rel
    raise SystemExit(f"{suite}: no s3tests_boto3/functional or s3tests/functional: not s3-tests?")


def ensure_venv(suite: Path, venv: Path, python: str) -> Path:
    """A virtualenv with the suite's requirements.txt (+ pytest-timeout, pytest-xdist),
    rebuilt when the requirements change."""
    req = suite / "requirements.txt"
    digest = hashlib.sha256(req.read_bytes() + " ".join(EXTRA_REQUIREMENTS).encode()).hexdigest()
    stamp = venv / ".egide-requirements-sha256"
    bin_python = venv / "bin" / "python"
    if bin_python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return bin_python
    print(f"preparing the suite's virtualenv in {venv} ...", file=sys.stderr)
    if not bin_python.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(bin_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(req), *EXTRA_REQUIREMENTS], check=True)
    stamp.write_text(digest + "\n")
    return bin_python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def egide_server(workdir: Path, users: Users, egide: Path) -> Iterator[str]:
    """Start `egide serve` on a free port with a fresh data directory; stop it at the end."""
    port = free_port()
    config = workdir / "egide.toml"
    config.write_text(server_toml(workdir / "data", port, users))
    log = workdir / "egide.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(egide), "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"egide exited at start:\n{log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"egide did not start:\n{log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.1)
        print(f"started egide on 127.0.0.1:{port} (pid {proc.pid}, log {log})", file=sys.stderr)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# The suite deletes its buckets before and after every test with ListObjectVersions and
# DeleteObjects; where those answer 501 every test would error in its fixture and leave its
# buckets behind. This plugin keeps the suite's own cleanup and, only when it fails with
# NotImplemented, empties the bucket with ListObjects + DeleteObject instead.
CLEANUP_PLUGIN = '''
"""Loaded with -p by tools/s3tests.py (Égide): fallback bucket cleanup for the fixtures."""
import importlib
import os

from botocore.exceptions import ClientError


def _not_implemented(exc):
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return err.get("Code") == "NotImplemented" or status == 501


def pytest_configure(config):
    functional = importlib.import_module(os.environ["EGIDE_S3TESTS_PACKAGE"])
    original = functional.nuke_bucket

    def nuke_bucket(client, bucket):
        try:
            return original(client, bucket)
        except ClientError as exc:
            if not _not_implemented(exc):
                raise
        while True:
            listing = client.list_objects(Bucket=bucket)
            keys = [obj["Key"] for obj in listing.get("Contents", [])]
            for key in keys:
                client.delete_object(Bucket=bucket, Key=key)
            if not keys:
                break
        client.delete_bucket(Bucket=bucket)

    functional.nuke_bucket = nuke_bucket
'''


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    errored: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored + self.skipped

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class TestResult:
    name: str
    module: str
    outcome: str
    message: str = ""


@dataclass
class Summary:
    families: dict[str, Counts] = field(default_factory=dict)
    totals: Counts = field(default_factory=Counts)
    tests: list[TestResult] = field(default_factory=list)


def parse_junit(path: Path) -> list[TestResult]:
    """One result per test case; a test that passed but whose fixture teardown errored counts
    as errored (pytest reports both in one <testcase>)."""
    results: list[TestResult] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            tag = child.tag
            if tag in {"failure", "error", "skipped"}:
                new = {"failure": "failed", "error": "errored", "skipped": "skipped"}[tag]
                # keep the worst: errored > failed > skipped > passed
                rank = {"passed": 0, "skipped": 1, "failed": 2, "errored": 3}
                if rank[new] > rank[outcome]:
                    outcome = new
                    lines = (child.get("message") or "").splitlines()
                    message = lines[0][:300] if lines else ""
        module = case.get("classname", "").rsplit(".", 1)[-1]
        results.append(TestResult(case.get("name", ""), module, outcome, message))
    return results


def summarize(results: Sequence[TestResult]) -> Summary:
    summary = Summary(tests=list(results))
    for result in results:
        summary.families.setdefault(family_of(result.name), Counts()).add(result.outcome)
        summary.totals.add(result.outcome)
    summary.families = dict(sorted(summary.families.items()))
    return summary


def render_table(summary: Summary) -> str:
    header = ("family", *OUTCOMES, "total")
    rows = [
        (name, *(str(getattr(c, o)) for o in OUTCOMES), str(c.total))
        for name, c in summary.families.items()
    ]
    totals = summary.totals
    rows.append(("TOTAL", *(str(getattr(totals, o)) for o in OUTCOMES), str(totals.total)))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows[:-1]), sep, line(rows[-1])])


def to_json(summary: Summary, meta: dict[str, str]) -> str:
    return json.dumps(
        {
            **meta,
            "families": {k: asdict(v) for k, v in summary.families.items()},
            "totals": asdict(summary.totals),
            "tests": [asdict(t) for t in summary.tests],
        },
        indent=2,
    )


# ---------------------------------------------------------------------------------------------
# command


def marker_expression(excluded: Sequence[str], extra: str | None) -> str:
    parts = [f"not {m}" for m in excluded]
    if extra:
        parts.append(f"({extra})")
    return " and ".join(parts)


def pytest_command(
    python: Path,
    functional: Path,
    junit: Path,
    *,
    markers: str,
    keyword: str | None,
    ignored: Sequence[str],
    timeout: int,
    workers: int,
    plugin: bool,
    extra: Sequence[str],
    files: Sequence[str] = (),
    deselected: Sequence[str] = (),
) -> list[str]:
    """`files`: only these modules of `functional` (else the whole directory)."""
    paths = [str(functional / f) for f in files] or [str(functional)]
    cmd = [str(python), "-m", "pytest", *paths, f"--junitxml={junit}"]
    cmd += ["-o", "junit_family=xunit1", "-q", "-rN", "--tb=line", "-p", "no:cacheprovider"]
    cmd += [f"--timeout={timeout}"]
    cmd += [f"--ignore={functional / m}" for m in ignored]
    if markers:
        cmd += ["-m", markers]
    if keyword:
        cmd += ["-k", keyword]
    # Node ids are relative to the suite's root (pytest's rootdir, the run's cwd): an absolute
    # path deselects nothing.
    for name in deselected:
        cmd += ["--deselect", f"{functional.parent.name}/{functional.name}/{name}"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    if plugin:
        cmd += ["-p", "egide_s3tests_cleanup"]
    return cmd + list(extra)


def suite_commit(suite: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(suite), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    users = default_users()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--suite", type=Path, required=True, help="checkout of ceph/s3-tests")
    p.add_argument("--endpoint", default="http://127.0.0.1:9000")
    p.add_argument(
        "--start",
        action="store_true",
        help="start an Égide server on a free port with a temporary data dir",
    )
    p.add_argument(
        "--egide",
        type=Path,
        default=PROJECT_ROOT / ".venv" / "bin" / "egide",
        help="egide executable for --start",
    )
    for role in ("main", "alt", "tenant"):
        user: User = getattr(users, role)
        p.add_argument(f"--{role}-key", default=user.access_key)
        p.add_argument(f"--{role}-secret", default=user.secret_key)
        p.add_argument(
            f"--{role}-user-id",
            default=user.user_id,
            help="the owner ID the server reports for this user",
        )
        p.add_argument(f"--{role}-display-name", default=user.display_name)
    p.add_argument("--bucket-prefix", default="egide-s3t-{random}-")
    p.add_argument(
        "--profile",
        choices=["aws"],
        help="aws: exactly the issue's AWS profile (test_s3.py and test_headers.py, its marker "
        "expression and deselects; replaces the default excludes; -m is and-ed with it)",
    )
    p.add_argument("-k", dest="keyword", help="pytest -k expression")
    p.add_argument("-m", dest="markers", help="pytest -m expression, and-ed with the excludes")
    p.add_argument(
        "--no-default-excludes",
        action="store_true",
        help="run every marker and every module of the functional directory",
    )
    p.add_argument("--exclude-marker", action="append", default=[], metavar="MARKER")
    p.add_argument(
        "--no-cleanup-fallback",
        action="store_true",
        help="do not load the bucket-cleanup fallback plugin",
    )
    p.add_argument("--junit", type=Path, help="keep the junit xml here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--timeout", type=int, default=60, help="per-test timeout (s)")
    p.add_argument("--workers", type=int, default=1, help="pytest-xdist workers (1: none)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--python", default=sys.executable, help="interpreter for the suite venv")
    p.add_argument("--show-output", action="store_true", help="stream pytest's output")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args(argv)


def users_from(args: argparse.Namespace) -> Users:
    base = default_users()

    def pick(role: str) -> User:
        user: User = getattr(base, role)
        return User(
            getattr(args, f"{role}_key"),
            getattr(args, f"{role}_secret"),
            getattr(args, f"{role}_user_id"),
            getattr(args, f"{role}_display_name"),
            user.email,
        )

    return Users(pick("main"), pick("alt"), pick("tenant"))


#: What each s3-tests user may do by policy: create and list its buckets (its rights on them
#: come from owning them, decision 0031).
CREATOR_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Action": ["s3:CreateBucket", "s3:ListAllMyBuckets"], "Resource": "*"}]}'
)


def ordinary_users(egide: Path, config: Path, endpoint: str, users: Users, work: Path) -> Users:
    """Main, alt and tenant as three ordinary users of the running server (not admin), each
    with a key of its own and the creator policy; their real canonical IDs and names."""
    import boto3

    def cli(*argv: str) -> str:
        done = subprocess.run(
            [str(egide), *argv, "--config", str(config)], capture_output=True, text=True, check=True
        )
        return done.stdout

    policy = work / "creator.json"
    policy.write_text(CREATOR_POLICY)
    made = []
    for role, name in (("main", "s3t-main"), ("alt", "s3t-alt"), ("tenant", "s3t-tenant")):
        cli("user", "create", name)
        cli("user", "policy-put", name, "creator", str(policy))
        key = json.loads(cli("key", "create", name, "--json"))
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=key["access_key"], aws_secret_access_key=key["secret_key"],
        )  # fmt: skip
        owner = s3.list_buckets()["Owner"]
        base: User = getattr(users, role)
        made.append(User(key["access_key"], key["secret_key"], owner["ID"],
                         owner["DisplayName"], base.email))  # fmt: skip
    return Users(made[0], made[1], made[2], users.tenant_name)


def run(args: argparse.Namespace) -> int:
    suite = args.suite.resolve()
    functional = tests_dir(suite)
    package = ".".join(functional.relative_to(suite).parts)
    python = ensure_venv(suite, args.venv, args.python)
    users = users_from(args)
    excluded = [] if args.no_default_excludes else list(DEFAULT_EXCLUDED_MARKERS)
    excluded += args.exclude_marker
    ignored = [] if args.no_default_excludes else list(DEFAULT_IGNORED_MODULES)
    markers = marker_expression(excluded, args.markers)
    files: tuple[str, ...] = ()
    deselected: tuple[str, ...] = ()
    if args.profile == "aws":
        markers = AWS_PROFILE_MARKERS + (f" and ({args.markers})" if args.markers else "")
        files, deselected, ignored = AWS_PROFILE_FILES, AWS_PROFILE_DESELECTED, []
    with tempfile.TemporaryDirectory(prefix="egide-s3tests-") as tmp:
        work = Path(tmp)
        junit = work / "junit.xml"
        (work / "egide_s3tests_cleanup.py").write_text(CLEANUP_PLUGIN)
        with contextlib.ExitStack() as stack:
            endpoint = args.endpoint
            if args.start:
                (work / "server").mkdir()
                endpoint = stack.enter_context(egide_server(work / "server", users, args.egide))
                config = work / "server" / "egide.toml"
                users = ordinary_users(args.egide, config, endpoint, users, work)
            conf = write_conf(work / "s3tests.conf", endpoint, users, args.bucket_prefix)
            cmd = pytest_command(
                python,
                functional,
                junit,
                markers=markers,
                keyword=args.keyword,
                ignored=ignored,
                timeout=args.timeout,
                workers=args.workers,
                plugin=not args.no_cleanup_fallback,
                extra=args.pytest_args,
                files=files,
                deselected=deselected,
            )
            env = {
                **os.environ,
                "S3TEST_CONF": str(conf),
                "EGIDE_S3TESTS_PACKAGE": package,
                "PYTHONPATH": os.pathsep.join(
                    [str(work), str(suite), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
            }
            print("running: " + " ".join(cmd), file=sys.stderr)
            started = time.monotonic()
            out = None if args.show_output else (work / "pytest.log").open("wb")
            try:
                code = subprocess.run(
                    cmd, cwd=suite, env=env, stdout=out, stderr=subprocess.STDOUT
                ).returncode
            finally:
                if out is not None:
                    out.close()
            elapsed = time.monotonic() - started
        if not junit.exists():
            log = work / "pytest.log"
            print(log.read_text(errors="replace") if log.exists() else "", file=sys.stderr)
            print(f"pytest exited {code} without a junit report", file=sys.stderr)
            return 2
        if args.junit:
            args.junit.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(junit, args.junit)
        summary = summarize(parse_junit(junit))
    meta = {
        "suite_commit": suite_commit(suite),
        "date": time.strftime("%Y-%m-%d"),
        "endpoint": endpoint,
        "markers": markers,
        "elapsed_seconds": f"{elapsed:.0f}",
    }
    if args.json:
        print(to_json(summary, meta))
    else:
        print(f"s3-tests {meta['suite_commit'][:12]} against {endpoint} in {elapsed:.0f} s")
        print(render_table(summary))
    # pytest exits 1 when tests fail and 5 when none was selected; both are results.
    return 0 if code in {0, 1, 5} else code


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
